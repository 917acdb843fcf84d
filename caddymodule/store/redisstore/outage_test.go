package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

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
	gatewaytest.Eventually(t, 10*time.Second, "look-up after the Redis restart", func() bool {
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
	gatewaytest.Eventually(t, 10*time.Second, "recovery from a hung Redis", func() bool {
		_, err := s.Lookup(ctx, h)
		return err == nil
	})

	// Gone: connections refused.
	srv.Stop()
	for range 3 { // also after the pool has given up dialing
		check()
	}
	srv.Restart()
	gatewaytest.Eventually(t, 10*time.Second, "recovery after Redis came back", func() bool {
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
	gatewaytest.Eventually(t, 5*time.Second, "the lost channel noticed", func() bool { return !s.cache.live.Load() })
	storetest.MustLookup(t, s, h)
	// A logout on this instance is honoured even though Redis is down.
	if err := s.DeleteSession(context.Background(), h); err == nil {
		t.Fatal("DeleteSession with Redis down reported success")
	}
	if _, err := s.Lookup(context.Background(), h); err == nil {
		t.Fatal("a token logged out here is still served from the cache")
	}
}
