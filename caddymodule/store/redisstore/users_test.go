package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
