package redisstore

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// lookupCache keeps validated look-ups for at most cache_ttl, so that a
// pass-through request costs no round trip to Redis. It is bounded
// (cache_size entries) and evicts one entry at a time with the CLOCK
// policy (second chance): a hit sets the entry's reference bit, and an
// insertion into a full shard sweeps the shard's clock hand, clearing
// bits, until it finds an entry that was not used since the hand last
// passed (or that has expired). So a full cache keeps the tokens that are
// in use and never empties itself: when the working set is larger than
// the cache, Redis sees the misses, not a stampede of every user at once.
//
// It is split into shards by the token hash (uniform: a SHA-256), each
// with its own lock, so that hits on many cores do not contend on one
// lock. A hit takes a read lock, reads one map entry and sets one bit:
// no allocation, no write to shared state besides that bit (which is
// only written when it was clear).
//
// Safety (a logout must be immediate on the gateway that did it):
// a look-up that read Redis before an invalidation must not put what it
// read into the cache after it. Every invalidation bumps the generation
// of the shards it touches, and put stores an entry only when its
// shard's generation is still what it was before the read. Entries are
// only added while the invalidation channel (invalidate.go) is live: an
// entry in the cache was read at a time when every later change would be
// announced to this gateway.
type lookupCache struct {
	ttl    time.Duration // 0: no cache
	shards []cacheShard
	mask   uint32

	// live is set while the invalidation channel is subscribed; put adds
	// nothing when it is not.
	live atomic.Bool
}

type cacheShard struct {
	gen atomic.Uint64 // bumped under mu; read without it

	mu       sync.RWMutex
	index    map[store.TokenHash]int32
	users    map[string]int32 // openid -> its newest entry (a list through prev/next)
	entries  []cacheEntry     // grows to capacity, then slots are reused
	free     []int32          // unused slots below len(entries)
	hand     int              // the CLOCK hand
	capacity int

	_ [64]byte // neighbouring shards' locks rarely share a cache line
}

type cacheEntry struct {
	th    store.TokenHash
	sess  store.Session
	until int64  // unix ns: cache_ttl after the read, or the session's expiry
	ref   uint32 // CLOCK reference bit, set by hits (atomic: hits hold only the read lock)
	used  bool
	// The shard's other entries of the same user, for forgetUser.
	prev, next int32
}

// Shard sizing: enough shards to spread the locks, never shards so small
// that one busy shard evicts what a quiet one would keep.
const (
	maxCacheShards     = 32
	minEntriesPerShard = 512
)

func newLookupCache(ttl time.Duration, size int) *lookupCache {
	c := &lookupCache{ttl: ttl}
	if ttl <= 0 {
		return c
	}
	n := 1
	for n < maxCacheShards && size/(n*2) >= minEntriesPerShard {
		n *= 2
	}
	c.shards = make([]cacheShard, n)
	c.mask = uint32(n - 1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.capacity = size / n
		if i < size%n {
			sh.capacity++
		}
		sh.index = make(map[store.TokenHash]int32)
		sh.users = make(map[string]int32)
	}
	return c
}

func (c *lookupCache) enabled() bool { return c.ttl > 0 }

func (c *lookupCache) shard(th *store.TokenHash) *cacheShard {
	return &c.shards[uint32(th[0])&c.mask]
}

// get answers a cached, unexpired look-up. now is unix ns.
func (c *lookupCache) get(th store.TokenHash, now int64) (store.Session, bool) {
	sh := c.shard(&th)
	sh.mu.RLock()
	i, ok := sh.index[th]
	if !ok {
		sh.mu.RUnlock()
		return store.Session{}, false
	}
	e := &sh.entries[i]
	if e.until <= now {
		sh.mu.RUnlock()
		return store.Session{}, false
	}
	if atomic.LoadUint32(&e.ref) == 0 {
		atomic.StoreUint32(&e.ref, 1)
	}
	sess := e.sess
	sh.mu.RUnlock()
	return sess, true
}

// generation is read before a look-up goes to Redis; see put.
func (c *lookupCache) generation(th store.TokenHash) uint64 {
	if !c.enabled() {
		return 0
	}
	return c.shard(&th).gen.Load()
}

// put caches sess until cache_ttl after now or the session's expiry,
// whichever comes first, unless th's shard saw an invalidation since gen
// was read, or the invalidation channel is not live.
func (c *lookupCache) put(th store.TokenHash, sess store.Session, gen uint64, now time.Time) {
	if !c.enabled() || !c.live.Load() {
		return
	}
	until := now.Add(c.ttl)
	if sess.ExpiresAt.Before(until) {
		until = sess.ExpiresAt
	}
	sh := c.shard(&th)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen.Load() != gen || sh.capacity == 0 {
		return
	}
	i, ok := sh.index[th]
	if ok {
		sh.unlinkUser(i)
	} else {
		i = sh.slot(now.UnixNano())
		sh.index[th] = i
	}
	e := &sh.entries[i]
	e.th, e.sess, e.until, e.used = th, sess, until.UnixNano(), true
	atomic.StoreUint32(&e.ref, 0) // a new entry earns its second chance by a hit
	sh.linkUser(i)
}

// slot returns a free slot, evicting one entry when the shard is full.
func (sh *cacheShard) slot(now int64) int32 {
	if n := len(sh.free); n > 0 {
		i := sh.free[n-1]
		sh.free = sh.free[:n-1]
		return i
	}
	if n := len(sh.entries); n < sh.capacity {
		if n == cap(sh.entries) {
			// Grow as append would, but never past the capacity.
			grown := make([]cacheEntry, n, min(max(2*n, 64), sh.capacity))
			copy(grown, sh.entries)
			sh.entries = grown
		}
		sh.entries = sh.entries[:n+1]
		return int32(n)
	}
	// CLOCK: every slot is in use here (free is empty). Two turns at most:
	// the first clears every reference bit it passes.
	for range 2*len(sh.entries) + 1 {
		i := int32(sh.hand)
		sh.hand++
		if sh.hand == len(sh.entries) {
			sh.hand = 0
		}
		e := &sh.entries[i]
		if e.until > now && atomic.LoadUint32(&e.ref) != 0 {
			atomic.StoreUint32(&e.ref, 0)
			continue
		}
		sh.evict(i)
		return i
	}
	panic("unreachable: the CLOCK hand found no victim in two turns")
}

// evict empties slot i (which stays allocated to the caller).
func (sh *cacheShard) evict(i int32) {
	e := &sh.entries[i]
	delete(sh.index, e.th)
	sh.unlinkUser(i)
	*e = cacheEntry{}
}

// remove empties slot i and frees it.
func (sh *cacheShard) remove(i int32) {
	sh.evict(i)
	sh.free = append(sh.free, i)
}

func (sh *cacheShard) linkUser(i int32) {
	e := &sh.entries[i]
	e.prev, e.next = -1, -1
	if head, ok := sh.users[e.sess.User.OpenID]; ok {
		e.next = head
		sh.entries[head].prev = i
	}
	sh.users[e.sess.User.OpenID] = i
}

func (sh *cacheShard) unlinkUser(i int32) {
	e := &sh.entries[i]
	if !e.used {
		return
	}
	switch {
	case e.prev >= 0:
		sh.entries[e.prev].next = e.next
	case e.next >= 0:
		sh.users[e.sess.User.OpenID] = e.next
	default:
		delete(sh.users, e.sess.User.OpenID)
	}
	if e.next >= 0 {
		sh.entries[e.next].prev = e.prev
	}
	e.prev, e.next = -1, -1
}

// forget drops one token.
func (c *lookupCache) forget(th store.TokenHash) {
	if !c.enabled() {
		return
	}
	sh := c.shard(&th)
	sh.mu.Lock()
	sh.gen.Add(1)
	if i, ok := sh.index[th]; ok {
		sh.remove(i)
	}
	sh.mu.Unlock()
}

// forgetUser drops every cached token of openid: a walk of the user's
// entries in each shard, not of the cache.
func (c *lookupCache) forgetUser(openid string) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen.Add(1)
		for j, ok := sh.users[openid]; ok; {
			next := sh.entries[j].next
			sh.remove(j)
			j, ok = next, next >= 0
		}
		sh.mu.Unlock()
	}
}

// dropAll empties the cache; look-ups that were reading Redis meanwhile
// do not put what they read.
func (c *lookupCache) dropAll() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen.Add(1)
		clear(sh.index)
		clear(sh.users)
		clear(sh.entries) // let the collector have the sessions' strings
		sh.entries = sh.entries[:0]
		sh.free = sh.free[:0]
		sh.hand = 0
		sh.mu.Unlock()
	}
}

// len counts the cached entries (tests and the cache-full benchmark).
func (c *lookupCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.index)
		sh.mu.RUnlock()
	}
	return n
}
