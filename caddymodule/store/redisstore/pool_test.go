package redisstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

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
	_, cleanup := openRedis(t, &Config{Address: Addresses{"127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))}, Timeout: caddy.Duration(100 * time.Millisecond)}, storetest.AppID(t, "down"), nil)
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
