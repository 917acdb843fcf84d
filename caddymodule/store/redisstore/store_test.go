package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// openRedis provisions a Config module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded.
func openRedis(t testing.TB, m *Config, appID string, logs **observer.ObservedLogs) (*sharedStore, func()) {
	t.Helper()
	roots := m.tlsRoots
	s, cleanup := storetest.OpenModule(t, m, appID, func() {
		m.logger = zap.NewNop()
		m.tlsRoots = roots
		if logs != nil {
			core, obs := observer.New(zap.DebugLevel)
			m.logger, *logs = zap.New(core), obs
		}
	})
	return s.(*sharedStore), cleanup
}

// wantCount checks Count exactly (the index answers it exactly).
func wantCount(t testing.TB, s store.Store, want int) {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func durationPtr(d time.Duration) *caddy.Duration {
	cd := caddy.Duration(d)
	return &cd
}

func withCache(ttl time.Duration) func(*Config) {
	return func(m *Config) { m.CacheTTL = durationPtr(ttl) }
}

// TestRedisStoreConformance runs the store suite on a standalone server,
// through Sentinel and on a cluster, with the local cache on and off.
func TestRedisStoreConformance(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			for _, cache := range []time.Duration{DefaultCacheTTL, 0} {
				t.Run(fmt.Sprint("cache_ttl=", cache), func(t *testing.T) {
					storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
						return d.open(t, appID, withCache(cache))
					}}.Run(t)
				})
			}
		})
	}
}

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
			storetest.Eventually(t, within, "phone bound on A seen on B", func() bool {
				return storetest.MustLookup(t, b, h1).User.Phone == "13800001111"
			})

			// Re-login on B rotates the key for A's cached tokens too.
			storetest.MustCreate(t, b, storetest.Hash("g3"), store.User{OpenID: alice.OpenID, SessionKey: "k2"}, time.Hour)
			storetest.Eventually(t, within, "new session key seen on A", func() bool {
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
			storetest.Eventually(t, within, "logout on B seen on A", gone(a, h1))

			// Revoke on A reaches tokens created on B.
			storetest.MustLookup(t, b, h2)
			if n, err := a.RevokeUser(ctx, alice.OpenID); err != nil || n != 3 {
				t.Fatalf("RevokeUser = %d, %v; want 3", n, err)
			}
			storetest.Eventually(t, within, "revoke on A seen on B", gone(b, h2))
			wantCount(t, a, 0)
			wantCount(t, b, 0)
		})
	}
}

// TestRedisStoreLogoutIsImmediate is issue 15's item 4: on the gateway
// that logged a token out (or revoked its user), no look-up that starts
// after DeleteSession (RevokeUser) returns may find it, however the
// look-ups already running interleave with it. The race is tried many
// times, with readers hammering the token throughout.
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

func TestRedisStoreRestartKeepsSessions(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s, _ := openRedis(t, &Config{Address: Addresses{srv.Addr()}, CacheTTL: durationPtr(0)}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	h := storetest.Hash("persist")
	u := store.User{OpenID: "o", SessionKey: "k", Phone: "13800001111", CountryCode: "86"}
	exp := storetest.MustCreate(t, s, h, u, time.Hour)
	if err := s.PutLoginResult(ctx, "code", []byte("sealed"), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	// The same store, not reopened: its client reconnects.
	var sess store.Session
	storetest.Eventually(t, 10*time.Second, "look-up after the Redis restart", func() bool {
		var err error
		sess, err = s.Lookup(ctx, h)
		return err == nil
	})
	if sess.User != u || !sess.ExpiresAt.Equal(exp) {
		t.Fatalf("after restart: %+v", sess)
	}
	if b, err := s.GetLoginResult(ctx, "code"); err != nil || string(b) != "sealed" {
		t.Fatalf("login result after restart: %q, %v", b, err)
	}
	wantCount(t, s, 1)
}

// TestRedisStoreOutage: Redis gone or hung is a store failure (503), never
// "not authenticated" (401), it costs at most about the timeout, and the
// store heals without being reopened.
func TestRedisStoreOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes")
	const timeout = 300 * time.Millisecond
	s, _ := openRedis(t, &Config{Address: Addresses{srv.Addr()}, CacheTTL: durationPtr(0), Timeout: caddy.Duration(timeout)}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	h := storetest.Hash("outage")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)

	storeDown := func(what string, err error, took time.Duration) {
		t.Helper()
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s during the outage: %v, want a store error (not store.ErrNotFound)", what, err)
		}
		if took > 4*timeout {
			t.Fatalf("%s took %v with a %v timeout", what, took, timeout)
		}
	}
	check := func() {
		t.Helper()
		start := time.Now()
		_, err := s.Lookup(ctx, h)
		storeDown("Lookup", err, time.Since(start))
		start = time.Now()
		_, err = s.CreateSession(ctx, storetest.Hash("new"), store.User{OpenID: "o", SessionKey: "k"}, time.Hour, 0)
		storeDown("CreateSession", err, time.Since(start))
		start = time.Now()
		_, err = s.GetLoginResult(ctx, "code")
		storeDown("GetLoginResult", err, time.Since(start))
		start = time.Now()
		err = s.BindPhone(ctx, "o", "1", "86")
		storeDown("BindPhone", err, time.Since(start))
		start = time.Now()
		_, err = s.Count(ctx)
		storeDown("Count", err, time.Since(start))
	}

	// Hung: the connection is open, nothing answers.
	srv.Pause()
	check()
	srv.Resume()
	storetest.Eventually(t, 10*time.Second, "recovery from a hung Redis", func() bool {
		_, err := s.Lookup(ctx, h)
		return err == nil
	})

	// Gone: connections refused.
	srv.Stop()
	for range 3 { // also after the pool has given up dialing
		check()
	}
	srv.Restart()
	storetest.Eventually(t, 10*time.Second, "recovery after Redis came back", func() bool {
		_, err := s.Lookup(ctx, h)
		return err == nil
	})
	storetest.MustCreate(t, s, storetest.Hash("after"), store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, storetest.Hash("after"))
}

// TestRedisStoreCacheServesDuringOutage: a token validated within
// cache_ttl keeps passing while Redis is briefly away (the invalidation
// channel is lost with it: the cache keeps its entries, adds none).
func TestRedisStoreCacheServesDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := openRedis(t, &Config{Address: Addresses{srv.Addr()}, CacheTTL: durationPtr(time.Minute)}, storetest.AppID(t, ""), nil)
	waitLive(t, s)
	h := storetest.Hash("cached")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)
	srv.Stop()
	storetest.Eventually(t, 5*time.Second, "the lost channel noticed", func() bool { return !s.cache.live.Load() })
	storetest.MustLookup(t, s, h)
	// A logout on this instance is honoured even though Redis is down.
	if err := s.DeleteSession(context.Background(), h); err == nil {
		t.Fatal("DeleteSession with Redis down reported success")
	}
	if _, err := s.Lookup(context.Background(), h); err == nil {
		t.Fatal("a token logged out here is still served from the cache")
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
	storetest.Eventually(t, cacheTTL, "B refuses the token revoked while its channel was cut", func() bool {
		_, err := b.Lookup(ctx, h)
		return errors.Is(err, store.ErrNotFound)
	})
	t.Logf("refused %v after the revocation (cache_ttl %v)", time.Since(start), cacheTTL)
	storetest.Eventually(t, 5*time.Second, "B subscribed again", func() bool { return b.subscriptions.Load() > subs })

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

// TestRedisStoreSentinelFailover: the primary is killed while sessions
// are in use; until the sentinels have promoted the replica every call
// fails as a store failure (503), never as "not found" (401); afterwards
// every session written before the failure works, through the same store.
func TestRedisStoreSentinelFailover(t *testing.T) {
	d := startDeployment(t, ModeSentinel, nil)
	testFailover(t, d, func() (string, func(time.Duration)) {
		old := d.sentinel.KillPrimary()
		return old, func(within time.Duration) { d.sentinel.WaitFailover(old, within) }
	})
}

// TestRedisStoreClusterFailover is the same with a cluster primary killed
// and its replica promoted.
func TestRedisStoreClusterFailover(t *testing.T) {
	d := startDeployment(t, ModeCluster, nil)
	testFailover(t, d, func() (string, func(time.Duration)) {
		// The primary of a key the sessions use, so that the failure is
		// on their path.
		killed := d.cluster.KillPrimaryFor("{o-fail-0}")
		return killed.Addr(), func(within time.Duration) { d.cluster.WaitFailover(killed, "{o-fail-0}", within) }
	})
}

func testFailover(t *testing.T, d *deployment, kill func() (string, func(time.Duration))) {
	ctx := context.Background()
	s := d.open(t, storetest.AppID(t, ""), withCache(0))
	var hs []store.TokenHash
	for i := range 40 {
		h := storetest.Hash(fmt.Sprint("fail-", i))
		hs = append(hs, h)
		storetest.MustCreate(t, s, h, store.User{OpenID: fmt.Sprint("o-fail-", i%10), SessionKey: "k"}, time.Hour)
	}
	// The store waits for a replica itself; this makes sure of it.
	d.waitReplicated()

	stop := make(chan struct{})
	var wrong atomic.Value
	var failed, ok atomic.Int64
	var firstFail, lastFail atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Lookup(ctx, hs[i%len(hs)])
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrNotFound):
					wrong.Store(fmt.Sprintf("%x: %v", hs[i%len(hs)][:4], err))
				default:
					now := time.Now().UnixNano()
					firstFail.CompareAndSwap(0, now)
					lastFail.Store(now)
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	old, wait := kill()
	wait(30 * time.Second)
	promoted := time.Since(start)
	var lastErr error
	storetest.Eventually(t, 15*time.Second, "look-ups succeed after the failover", func() bool {
		for _, h := range hs {
			if _, err := s.Lookup(ctx, h); err != nil {
				if lastErr == nil || err.Error() != lastErr.Error() {
					t.Logf("%v: %v", time.Since(start), err)
				}
				lastErr = err
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	if w := wrong.Load(); w != nil {
		t.Fatalf("a valid session was not found during the failover (a 401): %v", w)
	}
	window := time.Duration(0)
	if f := firstFail.Load(); f != 0 {
		window = time.Duration(lastFail.Load() - f)
	}
	t.Logf("killed %s; promoted after %v; store failures (503) for %v (%d failed, %d ok look-ups)",
		old, promoted.Round(time.Millisecond), window.Round(time.Millisecond), failed.Load(), ok.Load())
	// Writes work again, and everything written before is intact.
	h := storetest.Hash("after-failover")
	storetest.Eventually(t, 10*time.Second, "logins after the failover", func() bool {
		_, err := s.CreateSession(ctx, h, store.User{OpenID: "o-fail-0", SessionKey: "k2"}, time.Hour, time.Minute)
		return err == nil
	})
	for _, h := range hs {
		if u := storetest.MustLookup(t, s, h).User; u.OpenID == "o-fail-0" && u.SessionKey != "k2" {
			t.Fatalf("the rotation after the failover missed a session: %+v", u)
		}
	}
	if n, err := s.RevokeUser(ctx, "o-fail-0"); err != nil || n != 5 {
		t.Fatalf("RevokeUser after the failover = %d, %v; want 5", n, err)
	}
	wantCount(t, s, 36)
}

// TestRedisStoreTLS: the store talks TLS to a standalone server, to the
// sentinels and the primary they name, and to every cluster node, each
// checked against the CA.
func TestRedisStoreTLS(t *testing.T) {
	tc := redistest.NewTLS(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, tc)
			s := d.open(t, storetest.AppID(t, ""), nil)
			waitLive(t, s)
			h := storetest.Hash("tls")
			storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
			storetest.MustLookup(t, s, h)
			if _, err := s.RevokeUser(context.Background(), "o"); err != nil {
				t.Fatal(err)
			}
			storetest.WantNotFound(t, s, h)

			// Without the CA, the certificate is refused: a store
			// failure, never "not found".
			bad := d.open(t, storetest.AppID(t, "untrusted"), func(m *Config) { m.tlsRoots = nil; m.Timeout = caddy.Duration(300 * time.Millisecond) })
			if _, err := bad.Lookup(context.Background(), h); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("an untrusted certificate: %v", err)
			}
		})
	}
}

// TestRedisStoreSentinelAuth: sentinels with a password of their own,
// servers with another, both given as placeholders.
func TestRedisStoreSentinelAuth(t *testing.T) {
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{Password: "server-Pa55", SentinelPassword: "sentinel-Pa55"})
	t.Setenv("TEST_REDIS_PASSWORD", "server-Pa55")
	t.Setenv("TEST_SENTINEL_PASSWORD", "sentinel-Pa55")
	t.Setenv("TEST_MASTER_NAME", redistest.MasterName)
	m := &Config{Mode: ModeSentinel, Address: sn.Addrs(), MasterName: "{env.TEST_MASTER_NAME}",
		Password: "{env.TEST_REDIS_PASSWORD}", SentinelPassword: "{env.TEST_SENTINEL_PASSWORD}"}
	var logs *observer.ObservedLogs
	s, _ := openRedis(t, m, storetest.AppID(t, ""), &logs)
	h := storetest.Hash("auth")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)
	js, _ := json.Marshal(m)
	for _, l := range logs.All() {
		line, _ := json.Marshal(l.ContextMap())
		if strings.Contains(l.Message+string(line), "Pa55") {
			t.Fatalf("password logged: %s %s", l.Message, line)
		}
	}
	if strings.Contains(string(js), "Pa55") {
		t.Fatalf("the config holds a resolved password: %s", js)
	}

	// The sentinels' password wrong: a store failure, never "not found".
	bad := &Config{Mode: ModeSentinel, Address: sn.Addrs(), MasterName: redistest.MasterName,
		Password: "server-Pa55", SentinelPassword: "wrong", Timeout: caddy.Duration(300 * time.Millisecond)}
	b, _ := openRedis(t, bad, storetest.AppID(t, "bad"), nil)
	if _, err := b.Lookup(context.Background(), h); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a wrong sentinel password: %v", err)
	}
}

// TestRedisStoreRoundTrips pins what a look-up with the cache off costs:
// one GET, on every deployment.
func TestRedisStoreRoundTrips(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			s := d.open(t, storetest.AppID(t, ""), withCache(0))
			var hs []store.TokenHash
			for i := range 20 {
				h := storetest.Hash(fmt.Sprint("rt-", i))
				hs = append(hs, h)
				storetest.MustCreate(t, s, h, store.User{OpenID: fmt.Sprint("o-", i), SessionKey: "k"}, time.Hour)
			}
			c := countCommands(t, s)
			for _, h := range hs {
				storetest.MustLookup(t, s, h)
			}
			if n := c.roundTrips.Load(); n != int64(len(hs)) {
				t.Fatalf("%d look-ups made %d round trips (%d commands: %v), want one each", len(hs), n, c.commands.Load(), c.names)
			}
		})
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

// TestRedisStoreKeyLayout pins the documented keys, that a user's keys
// share a Cluster slot, and that no raw token reaches Redis.
func TestRedisStoreKeyLayout(t *testing.T) {
	addr := redistest.Start(t).Addr()
	app := storetest.AppID(t, "")
	s, _ := openRedis(t, &Config{Address: Addresses{addr}, KeyPrefix: "myprefix:"}, app, nil)
	ctx := context.Background()
	token := "the-raw-token-value"
	h := store.HashToken(token)
	storetest.MustCreate(t, s, h, store.User{OpenID: "o-1", SessionKey: "sk"}, time.Minute)
	if err := s.PutLoginResult(ctx, "c", []byte("r"), time.Minute); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	p := "myprefix:" + app + ":"
	hx := hex.EncodeToString(h[:])
	want := map[string]bool{p + "s:" + hx: true, p + "u:{o-1}": true, p + "t:{o-1}": true, p + "idx": true, p + "r:c": true}
	if len(keys) != len(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Fatalf("unexpected key %q", k)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); k != p+"idx" && (ttl <= 0 || ttl > time.Minute) {
			t.Fatalf("key %q has TTL %v", k, ttl)
		}
		dump, _ := rdb.Dump(ctx, k).Result()
		if strings.Contains(k+dump, token) {
			t.Fatalf("raw token stored in %q", k)
		}
	}
	for _, k := range s.userKeys("o-1") {
		if hashTag(k) != "o-1" {
			t.Fatalf("%q is not in the user's slot", k)
		}
	}
}

// TestRedisStoreScriptsDeclareKeys: every key a script touches comes from
// KEYS (Redis Cluster's rule), read from the scripts' source.
func TestRedisStoreScriptsDeclareKeys(t *testing.T) {
	call := regexp.MustCompile(`redis\.call\('(\w+)'(?:, ([^,)]+))?`)
	keyless := map[string]bool{"TIME": true, "PUBLISH": true}
	// The helpers' parameters, which their callers fill from KEYS.
	aliases := map[string]bool{"tkey": true, "ukey": true}
	for _, src := range []string{prelude, createUserSrc, setCopySrc, deleteSrc, revokeEndSrc, bindPhoneSrc, countSrc} {
		for _, m := range call.FindAllStringSubmatch(src, -1) {
			if keyless[m[1]] {
				continue
			}
			if !strings.HasPrefix(m[2], "KEYS[") && !aliases[m[2]] {
				t.Errorf("redis.call('%s', %s): not a declared key", m[1], m[2])
			}
		}
	}
}

func TestRedisStorePasswordAndPlaceholders(t *testing.T) {
	const password = "s3cret-Pa55word"
	addr := redistest.Start(t, "--requirepass", password).Addr()
	t.Setenv("TEST_REDIS_PASSWORD", password)
	t.Setenv("TEST_REDIS_ADDR", addr)

	var logs *observer.ObservedLogs
	s, _ := openRedis(t, &Config{Address: Addresses{"{env.TEST_REDIS_ADDR}"}, Password: "{env.TEST_REDIS_PASSWORD}"}, storetest.AppID(t, ""), &logs)
	h := storetest.Hash("pw")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)

	// A wrong password: a store error (503), never store.ErrNotFound, and the
	// password is in no log line or error.
	var badLogs *observer.ObservedLogs
	bad, _ := openRedis(t, &Config{Address: Addresses{addr}, Password: "wrong-" + password}, storetest.AppID(t, "bad"), &badLogs)
	_, err := bad.Lookup(context.Background(), h)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup with a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error carries the password: %v", err)
	}
	if badLogs.FilterMessageSnippet("unreachable").Len() != 1 {
		t.Fatalf("an unreachable Redis at start is not reported: %v", badLogs.All())
	}
	for _, l := range append(logs.All(), badLogs.All()...) {
		line, _ := json.Marshal(l.ContextMap())
		if strings.Contains(l.Message+string(line), password) {
			t.Fatalf("password logged: %s %s", l.Message, line)
		}
	}
}

func TestRedisStoreGoroutinesReleased(t *testing.T) {
	addr := redistest.Start(t).Addr()
	runtime.GC()
	base := runtime.NumGoroutine()
	for i := range 3 {
		s, cleanup := openRedis(t, &Config{Address: Addresses{addr}}, storetest.AppID(t, fmt.Sprint(i)), nil)
		var wg sync.WaitGroup
		for j := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := storetest.SeqHash(j)
				storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
				storetest.MustLookup(t, s, h)
			}()
		}
		wg.Wait()
		waitLive(t, s)
		cleanup()
	}
	// A store opened while Redis is down must not leave its dialer or
	// its subscriber behind either.
	_, cleanup := openRedis(t, &Config{Address: Addresses{"127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))}, Timeout: caddy.Duration(100 * time.Millisecond)}, storetest.AppID(t, "down"), nil)
	cleanup()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisStorePool(t *testing.T) {
	addr := redistest.Start(t).Addr()
	app := storetest.AppID(t, "")
	a, cleanupA := openRedis(t, &Config{Address: Addresses{addr}}, app, nil)
	b, cleanupB := openRedis(t, &Config{Address: Addresses{addr}}, app, nil)
	if a != b {
		t.Fatal("a reload with the same settings made a second client")
	}
	other, _ := openRedis(t, &Config{Address: Addresses{addr}}, app+"-other", nil)
	if other == a {
		t.Fatal("two apps share a store")
	}
	cleanupA()
	h := storetest.Hash("pool")
	storetest.MustCreate(t, b, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	cleanupB()
	if err := b.client.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("client still open after the last Cleanup: %v", err)
	}
	c, _ := openRedis(t, &Config{Address: Addresses{addr}}, app, nil)
	storetest.MustLookup(t, c, h)
}

func TestRedisStoreCaddyfile(t *testing.T) {
	var r Config
	d := caddyfile.NewTestDispenser(`redis {
		address    redis.internal:6380
		username   gateway
		password   {env.REDIS_PASSWORD}
		db         3
		key_prefix myapp:
		tls
		cache_ttl  2s
		cache_size 5000
		timeout    500ms
	}`)
	if err := r.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Config{Address: Addresses{"redis.internal:6380"}, Username: "gateway", Password: "{env.REDIS_PASSWORD}",
		DB: 3, KeyPrefix: "myapp:", TLS: true, CacheTTL: durationPtr(2 * time.Second), CacheSize: 5000, Timeout: caddy.Duration(500 * time.Millisecond)}
	gotJS, _ := json.Marshal(&r)
	wantJS, _ := json.Marshal(&want)
	if string(gotJS) != string(wantJS) {
		t.Fatalf("parsed %s, want %s", gotJS, wantJS)
	}

	for input, wantJSON := range map[string]string{
		"redis {\n cache_ttl off\n}": `{"cache_ttl":0}`,
		"redis":                      `{}`,
		"redis {\n mode sentinel\n address s1:26379 s2:26379\n address s3:26379\n master_name mymaster\n sentinel_username watcher\n sentinel_password {env.SENTINEL_PASSWORD}\n}": `{"mode":"sentinel","address":["s1:26379","s2:26379","s3:26379"],"master_name":"mymaster","sentinel_username":"watcher","sentinel_password":"{env.SENTINEL_PASSWORD}"}`,
		"redis {\n mode cluster\n address n1:6379 n2:6379\n tls\n}": `{"mode":"cluster","address":["n1:6379","n2:6379"],"tls":true}`,
	} {
		var r Config
		if err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Fatalf("%q: %v", input, err)
		}
		if js, _ := json.Marshal(&r); string(js) != wantJSON {
			t.Fatalf("%q: %s, want %s", input, js, wantJSON)
		}
	}

	for input, wantErr := range map[string]string{
		"redis {\n db x\n}":                                             "db",
		"redis {\n db -1\n}":                                            "db",
		"redis {\n cache_ttl soon\n}":                                   "cache_ttl",
		"redis {\n cache_size 0\n}":                                     "cache_size",
		"redis {\n cache_size many\n}":                                  "cache_size",
		"redis {\n timeout 0s\n}":                                       "timeout",
		"redis {\n timeout\n}":                                          "needs one argument",
		"redis {\n address\n}":                                          "address needs",
		"redis {\n address a:1 b:2\n}":                                  "standalone mode takes one address",
		"redis {\n mode clustered\n}":                                   "mode",
		"redis {\n mode\n}":                                             "needs one argument",
		"redis {\n mode cluster\n}":                                     "cluster mode needs",
		"redis {\n mode cluster\n address a:1\n db 2\n}":                "only database 0",
		"redis {\n mode sentinel\n address a:1\n}":                      "master_name",
		"redis {\n mode sentinel\n master_name m\n}":                    "sentinels' addresses",
		"redis {\n master_name m\n}":                                    "are for mode sentinel",
		"redis {\n mode cluster\n address a:1\n sentinel_password p\n}": "are for mode sentinel",
		"redis {\n tls yes\n}":                                          "no arguments",
		"redis {\n adress localhost\n}":                                 "adress",
		"redis extra":                                                   "no arguments",
	} {
		var r Config
		err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, wantErr)
		}
	}

	// The JSON twin: one address may be a string; Validate checks what
	// the Caddyfile checks.
	var fromJSON Config
	if err := json.Unmarshal([]byte(`{"address":"one:6379"}`), &fromJSON); err != nil || len(fromJSON.Address) != 1 || fromJSON.Address[0] != "one:6379" {
		t.Fatalf("address as a string: %v, %v", fromJSON.Address, err)
	}
	if err := json.Unmarshal([]byte(`{"address":["a:1","b:2"]}`), &fromJSON); err != nil || len(fromJSON.Address) != 2 {
		t.Fatalf("address as a list: %v, %v", fromJSON.Address, err)
	}

	if _, err := caddy.GetModule("wechat_auth.stores.redis"); err != nil {
		t.Fatal(err)
	}
	ctx := caddy.Context{Context: context.Background()}
	for what, m := range map[string]*Config{
		"negative db":             {DB: -1},
		"negative cache_ttl":      {CacheTTL: durationPtr(-time.Second)},
		"negative cache_size":     {CacheSize: -1},
		"address without port":    {Address: Addresses{"no-port"}},
		"db in cluster mode":      {Mode: ModeCluster, Address: Addresses{"a:1"}, DB: 1},
		"unknown mode":            {Mode: "ring"},
		"two standalone servers":  {Address: Addresses{"a:1", "b:1"}},
		"sentinel without master": {Mode: ModeSentinel, Address: Addresses{"a:1"}},
		"a { in key_prefix":       {KeyPrefix: "app{:"},
		"a } in key_prefix":       {KeyPrefix: "app}:"},
	} {
		if err := m.Provision(ctx); err != nil {
			t.Fatalf("%s: Provision: %v", what, err)
		}
		if err := m.Validate(); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
	t.Setenv("TEST_KEY_PREFIX", "app{x}:")
	m := &Config{KeyPrefix: "{env.TEST_KEY_PREFIX}"}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "key_prefix") {
		t.Fatalf("a placeholder giving a key_prefix with braces: %v", err)
	}
}

// A literal password that happens to hold braces is read as a placeholder
// Caddy does not know: the error says so without quoting any of it (the
// "placeholder" is a piece of the password), and an escaped brace works.
func TestRedisStorePasswordBracesNotInErrors(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, r := range []*Config{
		{Address: Addresses{"127.0.0.1:1"}, Password: "pa{ss-piece}w"},
		{Mode: ModeSentinel, Address: Addresses{"127.0.0.1:1"}, MasterName: "m", SentinelPassword: "pa{ss-piece}w"},
	} {
		err := r.Provision(ctx)
		if err == nil || strings.Contains(err.Error(), "ss-piece") || !strings.Contains(err.Error(), "password holds a placeholder that is not known") {
			t.Errorf("Provision: %v", err)
		}
	}
	r := &Config{Address: Addresses{"127.0.0.1:1"}, Password: `pa\{ss-piece}w`}
	if err := r.Provision(ctx); err != nil {
		t.Fatalf("an escaped brace: %v", err)
	}
	if got := r.password.Reveal(); got != "pa{ss-piece}w" {
		t.Fatalf("password = %q", got)
	}
}

// A session copy left behind by a change that failed half way (here: a
// phone binding whose copy rewrite never happened) catches up with the
// next change of the user, even one that changes nothing: the client's
// retry of the binding.
func TestRedisStoreCopiesCatchUp(t *testing.T) {
	addr := redistest.Start(t).Addr()
	s, _ := openRedis(t, &Config{Address: Addresses{addr}, CacheTTL: durationPtr(0)}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	u := store.User{OpenID: "o-dana", SessionKey: "k"}
	a, b := storetest.Hash("a"), storetest.Hash("b")
	storetest.MustCreate(t, s, a, u, time.Hour)
	storetest.MustCreate(t, s, b, u, time.Hour)
	key := s.sessionKey(hexOf(a))
	before, err := s.client.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BindPhone(ctx, u.OpenID, "13800000000", "86"); err != nil {
		t.Fatal(err)
	}
	if err := s.client.Set(ctx, key, before, redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	if got := storetest.MustLookup(t, s, a).User.Phone; got != "" {
		t.Fatalf("set-up: the copy is not behind (phone %q)", got)
	}
	if err := s.BindPhone(ctx, u.OpenID, "13800000000", "86"); err != nil {
		t.Fatal(err)
	}
	if got := storetest.MustLookup(t, s, a).User.Phone; got != "13800000000" {
		t.Fatalf("after the retried binding the copy still has phone %q", got)
	}
	// And a login that changes nothing brings a copy up too.
	if err := s.client.Set(ctx, key, before, redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	storetest.MustCreate(t, s, storetest.Hash("c"), u, time.Hour)
	if got := storetest.MustLookup(t, s, a).User.Phone; got != "13800000000" {
		t.Fatalf("after a login the copy still has phone %q", got)
	}
}
