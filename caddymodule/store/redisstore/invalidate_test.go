package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// TestRedisStoreSharedByGateways runs two stores on one Redis with their
// own clients and caches, as two Caddy instances would: every change
// through one reaches the other's cache through the invalidation channel,
// long before cache_ttl (a minute here).
func TestRedisStoreSharedByGateways(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			app := storetest.AppID(t, "")
			const cacheTTL = time.Minute
			const within = 5 * time.Second // far below cache_ttl: only an invalidation explains it
			a := d.open(t, app, withCache(cacheTTL))
			// A different timeout makes a different pool entry: its own
			// client and cache, not a second reference to a's.
			b := d.open(t, app, func(m *Config) { m.CacheTTL = durationPtr(cacheTTL); m.Timeout = caddy.Duration(2 * time.Second) })
			if a == b {
				t.Fatal("the two gateways share a client")
			}
			waitLive(t, a)
			waitLive(t, b)
			ctx := context.Background()
			gone := func(s store.Store, h store.TokenHash) func() bool {
				return func() bool { _, err := s.Lookup(ctx, h); return errors.Is(err, store.ErrNotFound) }
			}

			alice := store.User{OpenID: "o-alice", UnionID: "u-alice", SessionKey: "k1"}
			h1, h2 := storetest.Hash("g1"), storetest.Hash("g2")
			storetest.MustCreate(t, a, h1, alice, time.Hour)
			if u := storetest.MustLookup(t, b, h1).User; u != alice {
				t.Fatalf("login on A seen on B as %+v", u)
			}
			storetest.MustCreate(t, b, h2, alice, time.Hour)
			storetest.MustLookup(t, a, h2)
			if b.cache.len() == 0 || a.cache.len() == 0 {
				t.Fatal("nothing cached: the test would prove nothing")
			}

			// Phone bound on A: B has h1 cached, and sees the phone.
			if err := a.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
				t.Fatal(err)
			}
			gatewaytest.Eventually(t, within, "phone bound on A seen on B", func() bool {
				return storetest.MustLookup(t, b, h1).User.Phone == "13800001111"
			})

			// Re-login on B rotates the key for A's cached tokens too.
			storetest.MustCreate(t, b, storetest.Hash("g3"), store.User{OpenID: alice.OpenID, SessionKey: "k2"}, time.Hour)
			gatewaytest.Eventually(t, within, "new session key seen on A", func() bool {
				return storetest.MustLookup(t, a, h2).User.SessionKey == "k2"
			})
			if u := storetest.MustLookup(t, a, h2).User; u.Phone != "13800001111" || u.UnionID != "u-alice" {
				t.Fatalf("the rotation lost the user's fields: %+v", u)
			}
			// A caller that needs the newest key gets it at once.
			storetest.MustCreate(t, b, storetest.Hash("g4"), store.User{OpenID: alice.OpenID, SessionKey: "k3"}, time.Hour)
			if sess, err := a.LookupFresh(ctx, h2); err != nil || sess.User.SessionKey != "k3" {
				t.Fatalf("fresh look-up: %+v, %v", sess.User, err)
			}
			if k, err := a.PreviousSessionKey(ctx, alice.OpenID); err != nil || k != "k2" {
				t.Fatalf("previous key seen on A: %q, %v", k, err)
			}

			// Logout on B: gone on B at once, on A as soon as told.
			storetest.MustLookup(t, a, h1)
			if err := b.DeleteSession(ctx, h1); err != nil {
				t.Fatal(err)
			}
			storetest.WantNotFound(t, b, h1)
			gatewaytest.Eventually(t, within, "logout on B seen on A", gone(a, h1))

			// Revoke on A reaches tokens created on B.
			storetest.MustLookup(t, b, h2)
			if n, err := a.RevokeUser(ctx, alice.OpenID); err != nil || n != 3 {
				t.Fatalf("RevokeUser = %d, %v; want 3", n, err)
			}
			gatewaytest.Eventually(t, within, "revoke on A seen on B", gone(b, h2))
			wantCount(t, a, 0)
			wantCount(t, b, 0)
		})
	}
}

// TestRedisStoreChannelLost: while the invalidation channel is down, a
// change through another gateway is not heard of; the cached token is
// served at most until its cache_ttl, and once the channel is back the
// cache is dropped and the token refused. CLIENT KILL cuts the real
// subscription; the channel's two states are then driven directly, so
// that the message is surely missed.
func TestRedisStoreChannelLost(t *testing.T) {
	d := startDeployment(t, ModeStandalone, nil)
	app := storetest.AppID(t, "")
	const cacheTTL = 2 * time.Second
	a := d.open(t, app, withCache(cacheTTL))
	b := d.open(t, app, func(m *Config) { m.CacheTTL = durationPtr(cacheTTL); m.Timeout = caddy.Duration(2 * time.Second) })
	waitLive(t, b)
	ctx := context.Background()
	raw := d.raw(t)

	// The connection killed: B notices, subscribes again, and drops its
	// cache when it is back.
	h := storetest.Hash("killed")
	storetest.MustCreate(t, a, h, store.User{OpenID: "o-1", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, b, h)
	subs := b.subscriptions.Load()
	if n, err := raw.ClientKillByFilter(ctx, "TYPE", "pubsub").Result(); err != nil || n < 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub: %d, %v", n, err)
	}
	if _, err := a.RevokeUser(ctx, "o-1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	gatewaytest.Eventually(t, cacheTTL, "B refuses the token revoked while its channel was cut", func() bool {
		_, err := b.Lookup(ctx, h)
		return errors.Is(err, store.ErrNotFound)
	})
	t.Logf("refused %v after the revocation (cache_ttl %v)", time.Since(start), cacheTTL)
	gatewaytest.Eventually(t, 5*time.Second, "B subscribed again", func() bool { return b.subscriptions.Load() > subs })

	// The message surely missed: B's subscriber stopped, the channel
	// marked lost, as a dead connection would.
	h2 := storetest.Hash("missed")
	storetest.MustCreate(t, a, h2, store.User{OpenID: "o-2", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, b, h2)
	b.stopListening()
	b.channelLost(errors.New("test: channel cut"))
	if err := a.DeleteSession(ctx, h2); err != nil {
		t.Fatal(err)
	}
	// Not heard of: still served from the cache, within its cache_ttl...
	storetest.MustLookup(t, b, h2)
	// ...and nothing new is cached meanwhile.
	h3 := storetest.Hash("uncached")
	storetest.MustCreate(t, a, h3, store.User{OpenID: "o-3", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, b, h3)
	if _, ok := b.cache.get(h3, time.Now().UnixNano()); ok {
		t.Fatal("an entry was cached while the channel was down")
	}
	// The channel back: the cache is dropped, the token refused at once.
	b.channelUp()
	storetest.WantNotFound(t, b, h2)
	// Without the channel, the entry would have gone after cache_ttl.
	b.channelLost(errors.New("test: channel cut"))
	storetest.MustLookup(t, b, h3)
}
