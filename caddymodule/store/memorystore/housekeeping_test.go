package memorystore

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

func TestMemoryStoreEvictsOldest(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{MaxSessions: 10}, storetest.AppID(t, ""), nil)
	for i := range 25 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour+time.Duration(i)*time.Millisecond)
		s.settle()
	}
	wantCount(t, s, 10)
	for i := range 15 {
		storetest.WantNotFound(t, s, storetest.SeqHash(i))
	}
	for i := 15; i < 25; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
	// Deleting makes room without evicting anyone.
	if err := s.DeleteSession(context.Background(), storetest.SeqHash(20)); err != nil {
		t.Fatal(err)
	}
	storetest.MustCreate(t, s, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, 2*time.Hour)
	storetest.MustLookup(t, s, storetest.SeqHash(15))
	wantCount(t, s, 10)
}

func TestMemoryStoreEvictsInBatches(t *testing.T) {
	const max = 1280
	s, _ := openMemory(t, &MemoryStore{MaxSessions: max}, storetest.AppID(t, ""), nil)
	u := store.User{OpenID: "o", SessionKey: "k"}
	for i := range 3 * max {
		// Expiries in creation order, and distinct even if the clock is
		// coarse.
		storetest.MustCreate(t, s, storetest.SeqHash(i), u, time.Hour+time.Duration(i)*time.Millisecond)
		if i%100 == 0 {
			s.settle()
		}
	}
	s.settle()
	n := s.entries()
	if n > max || n < max-max/128-1 {
		t.Fatalf("evicted down to %d, want within a batch below %d", n, max)
	}
	// Exactly the newest n survive.
	for i := 3*max - n; i < 3*max; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
	storetest.WantNotFound(t, s, storetest.SeqHash(3*max-n-1))
}

// Above trimExact the cut-off comes from a sample of the shards: the
// count lands near a batch below the limit, and the sessions kept are the
// newest.
func TestMemoryStoreEvictsBySample(t *testing.T) {
	const n, max = 3 * trimExact / 2, trimExact + trimExact/4
	s, _ := openMemory(t, &MemoryStore{MaxSessions: max}, storetest.AppID(t, ""), nil)
	ctx := context.Background()
	base := time.Now()
	for i := range n {
		// Expiries in creation order (go-cache takes the ttl from now).
		ttl := time.Hour + time.Duration(i)*time.Millisecond - time.Since(base)
		if _, err := s.CreateSession(ctx, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%1000), SessionKey: "k"}, ttl, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.settle()
	got := s.entries()
	if got > max || got < max-3*max/128 {
		t.Fatalf("%d sessions kept, want a little under %d (a batch is %d)", got, max, max/128)
	}
	for i := n - got; i < n; i++ {
		storetest.MustLookup(t, s, storetest.SeqHash(i))
	}
}

// The login that crosses max_sessions does not pay for the scan that
// enforces it: the housekeeper does. Here the housekeeper is held inside
// a sweep; the login still returns at once, over the limit, and the limit
// is enforced once the housekeeper is free.
func TestMemoryStoreTrimIsNotTheLoginsWork(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{MaxSessions: 10}, storetest.AppID(t, ""), nil)
	for i := range 10 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i), SessionKey: "k"}, time.Hour+time.Duration(i)*time.Millisecond)
	}
	s.settle()

	// An entry that has expired, in a shard whose removal hook blocks.
	sh := s.shards[7]
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // (a failure must not leave the housekeeper stuck)
	sh.OnEvicted(func(k string, v any) {
		close(entered)
		<-release
		s.sessionRemoved(k, v)
	})
	rec := &memUser{}
	rec.u.Store(&packedUser{buf: "o-stuck", lens: [4]uint8{7}})
	rec.n = 1
	sh.Set(string(make([]byte, 32)), rec, time.Nanosecond)
	s.size.Add(1)
	settled := make(chan struct{})
	go func() { s.settle(); close(settled) }()
	<-entered // the housekeeper is stuck in the sweep

	done := make(chan struct{})
	go func() {
		defer close(done)
		storetest.MustCreate(t, s, storetest.SeqHash(100), store.User{OpenID: "o100", SessionKey: "k"}, 2*time.Hour)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the login crossing max_sessions waited for housekeeping")
	}
	// (The stuck entry has left its map already; its hook has not run.)
	if n := s.entries(); n != 11 {
		t.Fatalf("%d entries right after the login, want 11: the login trimmed", n)
	}
	free()
	<-settled
	sh.OnEvicted(s.sessionRemoved)
	wantCount(t, s, 10)
	storetest.WantNotFound(t, s, storetest.SeqHash(0))
	storetest.MustLookup(t, s, storetest.SeqHash(100))
}

func TestMemoryStoreSweep(t *testing.T) {
	s, _ := openMemory(t, &MemoryStore{}, storetest.AppID(t, ""), nil)
	for i := range 3000 {
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: fmt.Sprint("o", i%100), SessionKey: "k"}, 20*time.Millisecond)
	}
	keep := storetest.Hash("keep")
	storetest.MustCreate(t, s, keep, store.User{OpenID: "o-keep", SessionKey: "k"}, time.Hour)
	revoked := storetest.Hash("revoked")
	storetest.MustCreate(t, s, revoked, store.User{OpenID: "o-revoked", SessionKey: "k"}, time.Hour)
	time.Sleep(50 * time.Millisecond)
	if _, err := s.RevokeUser(context.Background(), "o-revoked"); err != nil {
		t.Fatal(err)
	}
	s.settle() // what the housekeeper does, a shard at a time, every minute
	// The revoked session's entry stays until it is used, expires or is
	// evicted; only the live one counts.
	if n := s.entries(); n != 2 {
		t.Fatalf("%d sessions left after the sweep, want 2", n)
	}
	wantCount(t, s, 1)
	s.mu.Lock()
	users := len(s.users)
	s.mu.Unlock()
	if users != 1 {
		t.Fatalf("%d user records left after the sweep, want 1", users)
	}
	storetest.MustLookup(t, s, keep)
	storetest.WantNotFound(t, s, revoked)
	if n := s.entries(); n != 1 {
		t.Fatalf("a revoked session seen by Lookup was not dropped: %d left", n)
	}
	wantCount(t, s, 1)
}

func TestMemoryStoreGoroutinesReleased(t *testing.T) {
	runtime.GC()
	base := runtime.NumGoroutine()
	file := filepath.Join(t.TempDir(), "s.db")
	for i := range 3 {
		s, cleanup := openMemory(t, &MemoryStore{Persist: file}, storetest.AppID(t, ""), nil)
		storetest.MustCreate(t, s, storetest.SeqHash(i), store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
		if err := s.PutLoginResult(context.Background(), "c", []byte("r"), time.Minute); err != nil {
			t.Fatal(err)
		}
		cleanup()
	}
	gatewaytest.Eventually(t, 5*time.Second, "goroutines back to "+fmt.Sprint(base), func() bool {
		return runtime.NumGoroutine() <= base
	})
}
