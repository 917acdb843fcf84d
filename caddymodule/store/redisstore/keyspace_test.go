package redisstore

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

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
