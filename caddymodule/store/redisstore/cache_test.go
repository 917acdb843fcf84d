package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// TestRedisStoreLogoutIsImmediate: on the gateway that logged a token
// out (or revoked its user), no look-up that starts after DeleteSession
// (RevokeUser) returns may find it, however the look-ups already running
// interleave with it. The race is tried many times, with readers
// hammering the token throughout.
func TestRedisStoreLogoutIsImmediate(t *testing.T) {
	d := startDeployment(t, ModeStandalone, nil)
	s := d.open(t, storetest.AppID(t, ""), withCache(time.Minute))
	waitLive(t, s)
	ctx := context.Background()
	const trials = 150
	for i := range trials {
		u := store.User{OpenID: fmt.Sprint("o-race-", i), SessionKey: "k"}
		h := storetest.Hash(fmt.Sprint("race-", i))
		storetest.MustCreate(t, s, h, u, time.Hour)
		storetest.MustLookup(t, s, h)

		var done atomic.Bool // set once the logout has returned
		var served atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 200; n++ {
					// Drop the cached entry now and then, so that
					// look-ups go to Redis and race the delete.
					if n%3 == 0 {
						s.cache.forget(storetest.Hash("unrelated"))
					}
					after := done.Load()
					_, err := s.Lookup(ctx, h)
					if err == nil && after {
						served.Add(1)
					}
					if after && n > 20 {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
		var err error
		if i%2 == 0 {
			err = s.DeleteSession(ctx, h)
		} else {
			_, err = s.RevokeUser(ctx, u.OpenID)
		}
		if err != nil {
			t.Fatal(err)
		}
		done.Store(true)
		wg.Wait()
		if n := served.Load(); n > 0 {
			t.Fatalf("trial %d: %d look-ups that started after the logout returned were served", i, n)
		}
		storetest.WantNotFound(t, s, h)
	}
}

// TestRedisStoreCacheBounded: a full cache evicts one entry at a time,
// keeping the entries in use (CLOCK), and never holds more than
// cache_size.
func TestRedisStoreCacheBounded(t *testing.T) {
	const size = 2000
	c := newLookupCache(time.Minute, size)
	c.live.Store(true)
	sess := store.Session{User: store.User{OpenID: "o"}, ExpiresAt: time.Now().Add(time.Hour)}
	now := time.Now()
	put := func(i int) {
		h := storetest.SeqHash(i)
		c.put(h, sess, c.generation(h), now)
	}
	for i := range size {
		put(i)
	}
	// Shards fill unevenly: a few evictions before the sum is reached.
	if n := c.len(); n < size*95/100 || n > size {
		t.Fatalf("cache holds %d entries after %d insertions, bound %d", n, size, size)
	}
	// Use (the cached ones of) the first half, then overfill with as
	// many new entries.
	var used []int
	for i := range size / 2 {
		if _, ok := c.get(storetest.SeqHash(i), now.UnixNano()); ok {
			used = append(used, i)
		}
	}
	for i := size; i < size+size/2; i++ {
		put(i)
	}
	if n := c.len(); n > size {
		t.Fatalf("cache holds %d entries, bound is %d", n, size)
	}
	kept := 0
	for _, i := range used {
		if _, ok := c.get(storetest.SeqHash(i), now.UnixNano()); ok {
			kept++
		}
	}
	// CLOCK evicts the unused half; a reset-when-full cache would keep
	// none of them.
	if kept < len(used)*9/10 {
		t.Fatalf("only %d of the %d entries in use survived the overfill", kept, len(used))
	}
	// forgetUser finds every entry of the user in every shard.
	c.forgetUser("o")
	if n := c.len(); n != 0 {
		t.Fatalf("%d entries of the user left after forgetUser", n)
	}
}

// TestRedisStoreCacheHitAllocs: a cache hit allocates nothing.
func TestRedisStoreCacheHitAllocs(t *testing.T) {
	d := startDeployment(t, ModeStandalone, nil)
	s := d.open(t, storetest.AppID(t, ""), withCache(time.Minute))
	waitLive(t, s)
	h := storetest.Hash("alloc")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", UnionID: "u", SessionKey: "k", Phone: "1", CountryCode: "86"}, time.Hour)
	storetest.MustLookup(t, s, h)
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(1000, func() {
		if _, err := s.Lookup(ctx, h); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("a cache hit allocates %.1f times", allocs)
	}
}
