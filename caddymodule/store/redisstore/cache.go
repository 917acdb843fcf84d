package redisstore

import (
	"sync"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// lookupCacheMax bounds the local cache of validated look-ups; when it is
// full it is emptied and refilled by the next requests.
const lookupCacheMax = 1 << 16

// lookupCache keeps validated look-ups for a short while, so that a
// pass-through request costs no round trip to Redis.
//
// A look-up that read Redis before an invalidation must not put what it
// read into the cache after it: a logout would then be undone here until
// the entry expires. Every invalidation bumps gen, and put only stores an
// entry when gen is still what it was before the read.
type lookupCache struct {
	ttl time.Duration // 0: no cache

	mu      sync.RWMutex
	entries map[store.TokenHash]cachedLookup
	gen     uint64
}

type cachedLookup struct {
	sess  store.Session
	until int64 // unix ns
}

func newLookupCache(ttl time.Duration) *lookupCache {
	return &lookupCache{ttl: ttl, entries: make(map[store.TokenHash]cachedLookup)}
}

func (c *lookupCache) enabled() bool { return c.ttl > 0 }

// get answers a cached, unexpired look-up.
func (c *lookupCache) get(th store.TokenHash) (store.Session, bool) {
	c.mu.RLock()
	e, ok := c.entries[th]
	c.mu.RUnlock()
	if !ok || e.until <= time.Now().UnixNano() {
		return store.Session{}, false
	}
	return e.sess, true
}

// generation is read before a look-up goes to Redis; see put.
func (c *lookupCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches sess until the cache TTL or the session's expiry, whichever
// comes first, unless something was invalidated since gen was read.
func (c *lookupCache) put(th store.TokenHash, sess store.Session, gen uint64, now time.Time) {
	until := now.Add(c.ttl)
	if sess.ExpiresAt.Before(until) {
		until = sess.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= lookupCacheMax {
		// Crude but bounded: start over rather than track recency on
		// every hit.
		c.entries = make(map[store.TokenHash]cachedLookup)
	}
	c.entries[th] = cachedLookup{sess: sess, until: until.UnixNano()}
}

// forget drops one token.
func (c *lookupCache) forget(th store.TokenHash) {
	c.mu.Lock()
	delete(c.entries, th)
	c.gen++
	c.mu.Unlock()
}

// forgetUser drops every cached token of openid: O(cache), only on
// writes.
func (c *lookupCache) forgetUser(openid string) {
	c.mu.Lock()
	for th, e := range c.entries {
		if e.sess.User.OpenID == openid {
			delete(c.entries, th)
		}
	}
	c.gen++
	c.mu.Unlock()
}
