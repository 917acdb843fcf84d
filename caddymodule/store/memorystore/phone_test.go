package memorystore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// failWrites makes every write to the store's journal fail from now on,
// as a full disk does (its file opened read-only, as in
// TestJournalFailedWriteNeverLands), until the returned func is called.
// The caller holds s.disk.mu, which keeps the writes off the file.
func failWrites(t *testing.T, s *sharedStore) (restore func()) {
	t.Helper()
	j := s.disk.f.j
	good := j.f
	ro, err := os.Open(j.path)
	if err != nil {
		t.Fatal(err)
	}
	j.f = ro
	return func() {
		j.f = good
		ro.Close()
	}
}

// wantPhone checks the phone of openid as memory holds it.
func wantPhone(t *testing.T, s *sharedStore, openid, phone, countryCode string) {
	t.Helper()
	u, err := s.User(context.Background(), openid)
	if err != nil {
		t.Fatalf("User(%s): %v", openid, err)
	}
	if u.Phone != phone || u.CountryCode != countryCode {
		t.Fatalf("%s has phone %q (%q), want %q (%q)", openid, u.Phone, u.CountryCode, phone, countryCode)
	}
}

// A phone binding whose write fails is answered 503 store_unavailable
// and changes nothing: the user keeps the phone bound before, or none,
// in memory and after a restart.
func TestMemoryStoreBindPhoneFailedWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	s, stop := openMemory(t, cfg(), app, nil)
	ha, hb := storetest.Hash("a"), storetest.Hash("b")
	storetest.MustCreate(t, s, ha, store.User{OpenID: "o-alice", SessionKey: "k"}, time.Hour)
	storetest.MustCreate(t, s, hb, store.User{OpenID: "o-bob", SessionKey: "k"}, time.Hour)
	if err := s.BindPhone(ctx, "o-alice", "13800001111", "86"); err != nil {
		t.Fatal(err)
	}

	s.disk.mu.Lock()
	restore := failWrites(t, s)
	s.disk.mu.Unlock()
	if err := s.BindPhone(ctx, "o-alice", "13900002222", "852"); err == nil {
		t.Fatal("BindPhone on a failing disk: no error")
	}
	if err := s.BindPhone(ctx, "o-bob", "13700003333", "86"); err == nil {
		t.Fatal("BindPhone on a failing disk: no error")
	}
	wantPhone(t, s, "o-alice", "13800001111", "86")
	wantPhone(t, s, "o-bob", "", "")
	if u := storetest.MustLookup(t, s, hb).User; u.Phone != "" {
		t.Fatalf("a token of bob is served with the phone %q of a failed binding", u.Phone)
	}

	s.disk.mu.Lock()
	restore()
	s.disk.mu.Unlock()
	crash(s, stop)
	s, _ = openMemory(t, cfg(), app, nil)
	wantPhone(t, s, "o-alice", "13800001111", "86")
	wantPhone(t, s, "o-bob", "", "")
}

// A login of the user made while a binding writes waits for its turn
// (userLocks): the binding, failing, takes back its phone and nothing of
// the login's. When the login's write fails too, memory and the file
// hold neither change.
func TestMemoryStoreBindPhoneFailedWriteThenLogin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.db")
	app := storetest.AppID(t, "")
	cfg := func() *MemoryStore { return &MemoryStore{Persist: file} }
	ctx := context.Background()
	s, stop := openMemory(t, cfg(), app, nil)
	alice := store.User{OpenID: "o-alice", SessionKey: "k1"}
	storetest.MustCreate(t, s, storetest.Hash("a"), alice, time.Hour)
	memory := func() store.User {
		u, err := s.User(ctx, alice.OpenID)
		if err != nil {
			t.Error(err)
		}
		return u
	}

	s.disk.mu.Lock() // every write waits here, after its change in memory
	bound := make(chan error, 1)
	go func() { bound <- s.BindPhone(ctx, alice.OpenID, "13900002222", "86") }()
	gatewaytest.Eventually(t, 5*time.Second, "the binding in memory", func() bool { return memory().Phone != "" })
	loggedIn := make(chan error, 1)
	rotated := alice
	rotated.SessionKey = "k2"
	go func() {
		_, err := s.CreateSession(ctx, storetest.Hash("a2"), rotated, time.Hour, time.Hour)
		loggedIn <- err
	}()
	// Time for the login to change memory too, were it let.
	time.Sleep(20 * time.Millisecond)
	if u := memory(); u.SessionKey != "k1" {
		t.Errorf("a login changed the user while a binding of it was writing: %+v", u)
	}
	restore := failWrites(t, s)
	s.disk.mu.Unlock()
	if err := <-bound; err == nil {
		t.Fatal("BindPhone on a failing disk: no error")
	}
	if err := <-loggedIn; err == nil {
		t.Fatal("CreateSession on a failing disk: no error")
	}
	s.disk.mu.Lock()
	restore()
	s.disk.mu.Unlock()
	check := func(s *sharedStore, when string) {
		t.Helper()
		wantUser(t, s, alice, "")
		storetest.WantNotFound(t, s, storetest.Hash("a2"))
		wantSessionsServe(t, s, when, alice, storetest.Hash("a"))
	}
	check(s, "after the failed binding and login")
	crash(s, stop)
	s, stop = openMemory(t, cfg(), app, nil)
	check(s, "after a restart")
	stop()
}

// Two bindings of one user whose writes both fail leave the phone bound
// before them, whichever order they take theirs back in: a binding never
// takes back the phone of another that is still writing, and may fail.
func TestMemoryStoreBindPhoneFailedWritesOfOneUser(t *testing.T) {
	ctx := context.Background()
	s, _ := openMemory(t, &MemoryStore{Persist: filepath.Join(t.TempDir(), "s.db")}, storetest.AppID(t, ""), nil)
	storetest.MustCreate(t, s, storetest.Hash("a"), store.User{OpenID: "o-alice", SessionKey: "k"}, time.Hour)
	if err := s.BindPhone(ctx, "o-alice", "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s.disk.mu.Lock()
		restore := failWrites(t, s)
		errs := make(chan error, 2)
		go func() { errs <- s.BindPhone(ctx, "o-alice", "13900002222", "86") }()
		gatewaytest.Eventually(t, 5*time.Second, "the first binding in memory", func() bool {
			u, _ := s.User(ctx, "o-alice")
			return u.Phone == "13900002222"
		})
		go func() { errs <- s.BindPhone(ctx, "o-alice", "13700003333", "86") }()
		// Time for the second to change memory too, were it let.
		time.Sleep(20 * time.Millisecond)
		s.disk.mu.Unlock()
		for range 2 {
			if err := <-errs; err == nil {
				t.Fatal("BindPhone on a failing disk: no error")
			}
		}
		s.disk.mu.Lock()
		restore()
		s.disk.mu.Unlock()
		if u, _ := s.User(ctx, "o-alice"); u.Phone != "13800001111" {
			t.Fatalf("round %d: after two failed bindings the phone is %q, want 13800001111", i, u.Phone)
		}
	}
}
