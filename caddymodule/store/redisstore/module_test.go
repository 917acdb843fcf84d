package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
