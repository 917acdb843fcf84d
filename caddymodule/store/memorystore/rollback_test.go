package memorystore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// A login or a key replacement whose write fails is answered 503
// store_unavailable, so it must change nothing: memory goes back to what
// the file holds, as a failed phone binding does (phone_test.go). These
// tests check memory right after the failure, and the file after a crash.

// failingWrites runs fn while every write to the store's journal fails.
func failingWrites(t *testing.T, s *sharedStore, fn func()) {
	t.Helper()
	s.disk.mu.Lock()
	restore := failWrites(t, s)
	s.disk.mu.Unlock()
	defer func() {
		s.disk.mu.Lock()
		restore()
		s.disk.mu.Unlock()
	}()
	fn()
}

// wantUser checks the user record of openid and its previous key ("" for
// none) as the store holds them.
func wantUser(t *testing.T, s *sharedStore, want store.User, prevKey string) {
	t.Helper()
	ctx := context.Background()
	u, err := s.User(ctx, want.OpenID)
	if err != nil {
		t.Fatalf("User(%s): %v", want.OpenID, err)
	}
	if u != want {
		t.Fatalf("user %+v, want %+v", u, want)
	}
	pk, err := s.PreviousSessionKey(ctx, want.OpenID)
	if errors.Is(err, store.ErrNotFound) {
		pk, err = "", nil
	}
	if err != nil || pk != prevKey {
		t.Fatalf("PreviousSessionKey(%s) = %q, %v; want %q", want.OpenID, pk, err, prevKey)
	}
}

// wantSessionsServe checks that each session ths is served as want.
func wantSessionsServe(t *testing.T, s *sharedStore, when string, want store.User, ths ...store.TokenHash) {
	t.Helper()
	for _, th := range ths {
		if u := storetest.MustLookup(t, s, th).User; u != want {
			t.Fatalf("%s: a session of %s is served as %+v, want %+v", when, want.OpenID, u, want)
		}
	}
}

// wantNoUser checks that the store has no record of openid.
func wantNoUser(t *testing.T, s *sharedStore, openid string) {
	t.Helper()
	if u, err := s.User(context.Background(), openid); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User(%s) = %+v, %v; want ErrNotFound", openid, u, err)
	}
}

// A login whose write fails leaves no session, and the user as it was:
// the sessions, session key, unionid, phone and previous key it had (or
// no record at all for a new user); the live sessions are as many as
// before.
func TestMemoryStoreCreateSessionFailedWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	s, stop := openMemory(t, cfg(), app, nil)
	alice := store.User{OpenID: "o-alice", SessionKey: "k1", UnionID: "u-alice"}
	ha1, ha2 := storetest.Hash("a1"), storetest.Hash("a2")
	storetest.MustCreate(t, s, ha1, alice, time.Hour)
	alice.SessionKey = "k2"
	if _, err := s.CreateSession(ctx, ha2, alice, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	alice.Phone, alice.CountryCode = "13800001111", "86"
	wantCount(t, s, 2)

	ha3, hc := storetest.Hash("a3"), storetest.Hash("c")
	failingWrites(t, s, func() {
		rotated := store.User{OpenID: alice.OpenID, SessionKey: "k3", UnionID: "u-other"}
		if _, err := s.CreateSession(ctx, ha3, rotated, time.Hour, time.Hour); err == nil {
			t.Fatal("CreateSession on a failing disk: no error")
		}
		// A rotation without grace drops the previous key: undone too.
		if _, err := s.CreateSession(ctx, ha3, rotated, time.Hour, 0); err == nil {
			t.Fatal("CreateSession on a failing disk: no error")
		}
		// The same key again: only the session to take back.
		if _, err := s.CreateSession(ctx, ha3, alice, time.Hour, time.Hour); err == nil {
			t.Fatal("CreateSession on a failing disk: no error")
		}
		carol := store.User{OpenID: "o-carol", SessionKey: "kc"}
		if _, err := s.CreateSession(ctx, hc, carol, time.Hour, time.Hour); err == nil {
			t.Fatal("CreateSession of a new user on a failing disk: no error")
		}
	})
	check := func(s *sharedStore, when string) {
		t.Helper()
		storetest.WantNotFound(t, s, ha3)
		storetest.WantNotFound(t, s, hc)
		wantSessionsServe(t, s, when, alice, ha1, ha2)
		wantUser(t, s, alice, "k1")
		wantNoUser(t, s, "o-carol")
		wantCount(t, s, 2)
	}
	check(s, "after the failed logins")

	crash(s, stop)
	s, stop = openMemory(t, cfg(), app, nil)
	check(s, "after a restart")
	stop()
}

// A login that replaced a user record whose sessions had all expired
// (the sweep not there yet) puts that record back when its write fails.
func TestMemoryStoreCreateSessionFailedWriteAfterExpiry(t *testing.T) {
	ctx := context.Background()
	s, _ := openMemory(t, &MemoryStore{Persist: filepath.Join(t.TempDir(), "s.db")}, storetest.AppID(t, ""), nil)
	alice := store.User{OpenID: "o-alice", SessionKey: "k1"}
	// A token in a shard the sweep (from shard 0, one every 234 ms) does
	// not reach within the test.
	label := "a1"
	for i := 0; storetest.Hash(label)[0] < 128; i++ {
		label = fmt.Sprint("a1-", i)
	}
	storetest.MustCreate(t, s, storetest.Hash(label), alice, time.Second)
	time.Sleep(3100 * time.Millisecond) // expired, to the second (rounded up) the record keeps
	wantNoUser(t, s, alice.OpenID)
	s.mu.Lock()
	before := s.users[alice.OpenID]
	s.mu.Unlock()
	failingWrites(t, s, func() {
		if _, err := s.CreateSession(ctx, storetest.Hash("a2"), store.User{OpenID: alice.OpenID, SessionKey: "k2"}, time.Hour, time.Hour); err == nil {
			t.Fatal("CreateSession on a failing disk: no error")
		}
	})
	storetest.WantNotFound(t, s, storetest.Hash("a2"))
	s.mu.Lock()
	after := s.users[alice.OpenID]
	s.mu.Unlock()
	if before == nil || after != before {
		t.Fatalf("the expired record of alice is %p after the failed login, want %p", after, before)
	}
	// The sweep then ends it as it would have, file and all.
	wantCount(t, s, 0)
	s.mu.Lock()
	n := len(s.users)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d user records after the sweep, want 0", n)
	}
}

// A key replacement whose write fails leaves the key it was to replace,
// and the previous key it was to drop.
func TestMemoryStoreReplaceSessionKeyFailedWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	s, stop := openMemory(t, cfg(), app, nil)
	alice := store.User{OpenID: "o-alice", SessionKey: "k1"}
	ha1, ha2 := storetest.Hash("a1"), storetest.Hash("a2")
	storetest.MustCreate(t, s, ha1, alice, time.Hour)
	alice.SessionKey = "k2"
	if _, err := s.CreateSession(ctx, ha2, alice, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}

	failingWrites(t, s, func() {
		replaced, err := s.ReplaceSessionKey(ctx, alice.OpenID, "k2", "k3")
		if err == nil {
			t.Fatal("ReplaceSessionKey on a failing disk: no error")
		}
		if replaced {
			t.Error("ReplaceSessionKey on a failing disk: replaced = true with its error")
		}
	})
	check := func(s *sharedStore, when string) {
		t.Helper()
		wantSessionsServe(t, s, when, alice, ha1, ha2)
		wantUser(t, s, alice, "k1")
	}
	check(s, "after the failed replacement")

	crash(s, stop)
	s, stop = openMemory(t, cfg(), app, nil)
	check(s, "after a restart")
	// And the replacement sent again goes through.
	if ok, err := s.ReplaceSessionKey(ctx, alice.OpenID, "k2", "k3"); err != nil || !ok {
		t.Fatalf("ReplaceSessionKey once the disk is back = %v, %v", ok, err)
	}
	alice.SessionKey = "k3"
	wantUser(t, s, alice, "")
	stop()
}
