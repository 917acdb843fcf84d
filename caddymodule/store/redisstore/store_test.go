package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// openRedis provisions a RedisStore module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded.
func openRedis(t testing.TB, m *RedisStore, appID string, logs **observer.ObservedLogs) (*redisStore, func()) {
	t.Helper()
	s, cleanup := storetest.OpenModule(t, m, appID, func() {
		m.logger = zap.NewNop()
		if logs != nil {
			core, obs := observer.New(zap.DebugLevel)
			m.logger, *logs = zap.New(core), obs
		}
	})
	return s.(*redisStore), cleanup
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

func TestRedisStoreConformance(t *testing.T) {
	addr := redistest.Start(t).Addr()
	for _, cache := range []time.Duration{DefaultCacheTTL, 0} {
		t.Run(fmt.Sprint("cache_ttl=", cache), func(t *testing.T) {
			storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
				s, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cache)}, appID, nil)
				return s
			}}.Run(t)
		})
	}
}

// TestRedisStoreSharedByGateways runs two stores on one Redis with their
// own clients and caches, as two Caddy instances would.
func TestRedisStoreSharedByGateways(t *testing.T) {
	addr := redistest.Start(t).Addr()
	app := storetest.AppID(t, "")
	const cacheTTL = 100 * time.Millisecond
	a, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cacheTTL)}, app, nil)
	// A different timeout makes a different pool entry: its own client
	// and cache, not a second reference to a's.
	b, _ := openRedis(t, &RedisStore{Address: addr, CacheTTL: durationPtr(cacheTTL), Timeout: caddy.Duration(2 * time.Second)}, app, nil)
	if a == b {
		t.Fatal("the two gateways share a client")
	}
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

	// Phone bound on A: B has h1 cached, and sees the phone within
	// cache_ttl.
	if err := a.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 10*cacheTTL, "phone bound on A seen on B", func() bool {
		return storetest.MustLookup(t, b, h1).User.Phone == "13800001111"
	})

	// Re-login on B rotates the key for A's cached tokens too.
	storetest.MustCreate(t, b, storetest.Hash("g3"), store.User{OpenID: alice.OpenID, SessionKey: "k2"}, time.Hour)
	storetest.Eventually(t, 10*cacheTTL, "new session key seen on A", func() bool {
		return storetest.MustLookup(t, a, h2).User.SessionKey == "k2"
	})
	// A caller that needs the newest key gets it at once.
	storetest.MustCreate(t, b, storetest.Hash("g4"), store.User{OpenID: alice.OpenID, SessionKey: "k3"}, time.Hour)
	if sess, err := a.LookupFresh(ctx, h2); err != nil || sess.User.SessionKey != "k3" {
		t.Fatalf("fresh look-up: %+v, %v", sess.User, err)
	}

	// Logout on B: gone on B at once, on A within cache_ttl.
	storetest.MustLookup(t, a, h1)
	if err := b.DeleteSession(ctx, h1); err != nil {
		t.Fatal(err)
	}
	storetest.WantNotFound(t, b, h1)
	storetest.Eventually(t, 10*cacheTTL, "logout on B seen on A", gone(a, h1))

	// Revoke on A reaches tokens created on B.
	storetest.MustLookup(t, b, h2)
	if n, err := a.RevokeUser(ctx, alice.OpenID); err != nil || n != 3 {
		t.Fatalf("RevokeUser = %d, %v; want 3", n, err)
	}
	storetest.Eventually(t, 10*cacheTTL, "revoke on A seen on B", gone(b, h2))
	wantCount(t, a, 0)
	wantCount(t, b, 0)
}

func TestRedisStoreRestartKeepsSessions(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s, _ := openRedis(t, &RedisStore{Address: srv.Addr(), CacheTTL: durationPtr(0)}, storetest.AppID(t, ""), nil)
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
	s, _ := openRedis(t, &RedisStore{Address: srv.Addr(), CacheTTL: durationPtr(0), Timeout: caddy.Duration(timeout)}, storetest.AppID(t, ""), nil)
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
// cache_ttl keeps passing while Redis is briefly away.
func TestRedisStoreCacheServesDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := openRedis(t, &RedisStore{Address: srv.Addr(), CacheTTL: durationPtr(time.Minute)}, storetest.AppID(t, ""), nil)
	h := storetest.Hash("cached")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)
	srv.Stop()
	storetest.MustLookup(t, s, h)
	// A logout on this instance is honoured even though Redis is down.
	if err := s.DeleteSession(context.Background(), h); err == nil {
		t.Fatal("DeleteSession with Redis down reported success")
	}
	if _, err := s.Lookup(context.Background(), h); err == nil {
		t.Fatal("a token logged out here is still served from the cache")
	}
}

func TestRedisStoreCacheBounded(t *testing.T) {
	addr := redistest.Start(t).Addr()
	s, _ := openRedis(t, &RedisStore{Address: addr}, storetest.AppID(t, ""), nil)
	for i := range lookupCacheMax + 10 {
		s.cache.put(storetest.SeqHash(i), store.Session{ExpiresAt: time.Now().Add(time.Hour)}, s.cache.generation(), time.Now())
	}
	h := storetest.Hash("bounded")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)
	s.cache.mu.RLock()
	n := len(s.cache.entries)
	s.cache.mu.RUnlock()
	if n > lookupCacheMax {
		t.Fatalf("cache holds %d entries, bound is %d", n, lookupCacheMax)
	}
}

// TestRedisStoreKeyLayout pins the documented keys, and that no raw token
// reaches Redis.
func TestRedisStoreKeyLayout(t *testing.T) {
	addr := redistest.Start(t).Addr()
	app := storetest.AppID(t, "")
	s, _ := openRedis(t, &RedisStore{Address: addr, KeyPrefix: "myprefix:"}, app, nil)
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
	want := map[string]bool{p + "s:" + hx: true, p + "u:o-1": true, p + "t:o-1": true, p + "idx": true, p + "r:c": true}
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
}

func TestRedisStorePasswordAndPlaceholders(t *testing.T) {
	const password = "s3cret-Pa55word"
	addr := redistest.Start(t, "--requirepass", password).Addr()
	t.Setenv("TEST_REDIS_PASSWORD", password)
	t.Setenv("TEST_REDIS_ADDR", addr)

	var logs *observer.ObservedLogs
	s, _ := openRedis(t, &RedisStore{Address: "{env.TEST_REDIS_ADDR}", Password: "{env.TEST_REDIS_PASSWORD}"}, storetest.AppID(t, ""), &logs)
	h := storetest.Hash("pw")
	storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
	storetest.MustLookup(t, s, h)

	// A wrong password: a store error (503), never store.ErrNotFound, and the
	// password is in no log line or error.
	var badLogs *observer.ObservedLogs
	bad, _ := openRedis(t, &RedisStore{Address: addr, Password: "wrong-" + password}, storetest.AppID(t, "bad"), &badLogs)
	_, err := bad.Lookup(context.Background(), h)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup with a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error carries the password: %v", err)
	}
	if badLogs.FilterLevelExact(zap.WarnLevel).Len() != 1 {
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
		s, cleanup := openRedis(t, &RedisStore{Address: addr}, storetest.AppID(t, fmt.Sprint(i)), nil)
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
		cleanup()
	}
	// A store opened while Redis is down must not leave its dialer
	// behind either.
	_, cleanup := openRedis(t, &RedisStore{Address: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)), Timeout: caddy.Duration(100 * time.Millisecond)}, storetest.AppID(t, "down"), nil)
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
	a, cleanupA := openRedis(t, &RedisStore{Address: addr}, app, nil)
	b, cleanupB := openRedis(t, &RedisStore{Address: addr}, app, nil)
	if a != b {
		t.Fatal("a reload with the same settings made a second client")
	}
	other, _ := openRedis(t, &RedisStore{Address: addr}, app+"-other", nil)
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
	c, _ := openRedis(t, &RedisStore{Address: addr}, app, nil)
	storetest.MustLookup(t, c, h)
}

func TestRedisStoreCaddyfile(t *testing.T) {
	var r RedisStore
	d := caddyfile.NewTestDispenser(`redis {
		address    redis.internal:6380
		username   gateway
		password   {env.REDIS_PASSWORD}
		db         3
		key_prefix myapp:
		tls
		cache_ttl  2s
		timeout    500ms
	}`)
	if err := r.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := RedisStore{Address: "redis.internal:6380", Username: "gateway", Password: "{env.REDIS_PASSWORD}",
		DB: 3, KeyPrefix: "myapp:", TLS: true, CacheTTL: durationPtr(2 * time.Second), Timeout: caddy.Duration(500 * time.Millisecond)}
	gotJS, _ := json.Marshal(&r)
	wantJS, _ := json.Marshal(&want)
	if string(gotJS) != string(wantJS) {
		t.Fatalf("parsed %s, want %s", gotJS, wantJS)
	}

	var off RedisStore
	if err := off.UnmarshalCaddyfile(caddyfile.NewTestDispenser("redis {\n cache_ttl off\n}")); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&off); string(js) != `{"cache_ttl":0}` {
		t.Fatalf("cache_ttl off: %s", js)
	}
	var empty RedisStore
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser("redis")); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&empty); string(js) != `{}` {
		t.Fatalf("defaults: %s", js)
	}

	for input, wantErr := range map[string]string{
		"redis {\n db x\n}":             "db",
		"redis {\n db -1\n}":            "db",
		"redis {\n cache_ttl soon\n}":   "cache_ttl",
		"redis {\n timeout 0s\n}":       "timeout",
		"redis {\n timeout\n}":          "needs one argument",
		"redis {\n address\n}":          "needs one argument",
		"redis {\n address a b\n}":      "takes one argument",
		"redis {\n tls yes\n}":          "no arguments",
		"redis {\n adress localhost\n}": "adress",
		"redis extra":                   "no arguments",
	} {
		var r RedisStore
		err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, wantErr)
		}
	}

	if _, err := caddy.GetModule("wechat_auth.stores.redis"); err != nil {
		t.Fatal(err)
	}
	ctx := caddy.Context{Context: context.Background()}
	if err := (&RedisStore{DB: -1}).Validate(); err == nil {
		t.Fatal("negative db accepted")
	}
	if err := (&RedisStore{CacheTTL: durationPtr(-time.Second)}).Validate(); err == nil {
		t.Fatal("negative cache_ttl accepted")
	}
	noPort := &RedisStore{Address: "no-port"}
	if err := noPort.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := noPort.Validate(); err == nil {
		t.Fatal("address without port accepted")
	}
}

// BenchmarkRedisLookup measures a pass-through look-up with the local
// cache (the default) and without it (a round trip per request).
func BenchmarkRedisLookup(b *testing.B) {
	addr := redistest.Start(b).Addr()
	for _, cache := range []time.Duration{DefaultCacheTTL, 0} {
		name := "cache=on"
		if cache == 0 {
			name = "cache=off"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := openRedis(b, &RedisStore{Address: addr, CacheTTL: durationPtr(cache)}, "wx_bench_"+name, nil)
			ctx := context.Background()
			hs := make([]store.TokenHash, 1000)
			for i := range hs {
				hs[i] = storetest.SeqHash(i)
				u := store.User{OpenID: fmt.Sprintf("oAbCdEfGhIjKlMnOpQr%09d", i), SessionKey: "c2Vzc2lvbktleTEyMzQ1Ng=="}
				if _, err := s.CreateSession(ctx, hs[i], u, time.Hour, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Lookup(ctx, hs[i%len(hs)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
