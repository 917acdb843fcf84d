package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

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
	gatewaytest.Eventually(t, 15*time.Second, "look-ups succeed after the failover", func() bool {
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
	gatewaytest.Eventually(t, 10*time.Second, "logins after the failover", func() bool {
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
