package caddymodule

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// How long WeChat's word that a session key is valid is believed, and
// how many such answers are kept. A key WeChat replaced behind the
// gateway's back (data pre-fetch) is then signed with for at most that
// long; a minute of checks costs one call per active payer, not one per
// signature.
const (
	keyCheckTTL  = time.Minute
	maxKeyChecks = 1 << 16
)

// keyCheckID names one session key of one user, without holding the key.
type keyCheckID [sha256.Size]byte

func newKeyCheckID(openid, sessionKey string) keyCheckID {
	return sha256.Sum256([]byte(openid + "\x00" + sessionKey))
}

// keyChecks remembers, for keyCheckTTL, the session keys WeChat said it
// holds (checkSessionKey). Only a valid answer is kept: a key WeChat
// refused, or a check that failed, is asked again next time. Memory is
// bounded: past maxKeyChecks entries, expired ones are dropped, then any.
type keyChecks struct {
	ttl     time.Duration
	max     int
	now     func() time.Time
	flights singleflight.Group

	mu    sync.Mutex
	valid map[keyCheckID]time.Time // → until
}

func newKeyChecks(ttl time.Duration, max int) *keyChecks {
	return &keyChecks{ttl: ttl, max: max, now: time.Now, valid: make(map[keyCheckID]time.Time)}
}

// cached reports whether id was found valid less than ttl ago.
func (c *keyChecks) cached(id keyCheckID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.valid[id]
	if ok && !c.now().Before(until) {
		delete(c.valid, id)
		ok = false
	}
	return ok
}

// remember records that WeChat found id valid at checkedAt.
func (c *keyChecks) remember(id keyCheckID, checkedAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.valid[id]; !ok && len(c.valid) >= c.max {
		now := c.now()
		for k, until := range c.valid {
			if !now.Before(until) {
				delete(c.valid, k)
			}
		}
		for k := range c.valid {
			if len(c.valid) < c.max {
				break
			}
			delete(c.valid, k)
		}
	}
	c.valid[id] = checkedAt.Add(c.ttl)
}

// forget drops id: WeChat said the key is no longer valid.
func (c *keyChecks) forget(id keyCheckID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.valid, id)
}

// check answers whether WeChat holds sessionKey for openid, from the
// cache when it can (cached is then true). Concurrent checks of one key
// share one call to WeChat, which runs on a context the first caller's
// disconnect cannot cancel (the client bounds it with its timeout).
func (c *keyChecks) check(ctx context.Context, client *wechat.Client, openid, sessionKey string) (valid, cached bool, err error) {
	id := newKeyCheckID(openid, sessionKey)
	if c.cached(id) {
		return true, true, nil
	}
	v, err, _ := c.flights.Do(string(id[:]), func() (any, error) {
		return c.ask(context.WithoutCancel(ctx), client, id, openid, sessionKey)
	})
	if err != nil {
		return false, false, err
	}
	return v.(bool), false, nil
}

// ask calls WeChat, whatever the cache holds, and keeps the answer: a
// valid key is remembered, an invalid one forgotten.
func (c *keyChecks) ask(ctx context.Context, client *wechat.Client, id keyCheckID, openid, sessionKey string) (bool, error) {
	start := c.now()
	valid, err := client.CheckSessionKey(ctx, openid, sessionKey)
	switch {
	case err != nil:
		return false, err
	case valid:
		c.remember(id, start)
	default:
		c.forget(id)
	}
	return valid, nil
}
