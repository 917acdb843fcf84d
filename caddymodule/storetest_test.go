package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// storeOpener opens the store of appID for one test; the opener arranges
// its cleanup. Stores opened with the same app id within one test share
// their sessions.
type storeOpener func(t *testing.T, appID string) Store

// testHash gives a distinct, repeatable token hash per label.
func testHash(label string) TokenHash { return HashToken("token-" + label) }

// seqHash gives the i-th of a series of token hashes without keeping them.
func seqHash(i int) TokenHash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// appIDFor makes an app id unique to the running (sub)test, so that tests
// sharing one Redis never see each other's keys.
func appIDFor(t *testing.T, suffix string) string {
	r := strings.NewReplacer("/", "_", " ", "_", "=", "_")
	return fmt.Sprintf("wx_%s_%s_%d", r.Replace(t.Name()), suffix, time.Now().UnixNano())
}

func mustLookup(t *testing.T, s Store, h TokenHash) Session {
	t.Helper()
	sess, err := s.Lookup(context.Background(), h)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return sess
}

func wantNotFound(t *testing.T, s Store, h TokenHash) {
	t.Helper()
	if _, err := s.Lookup(context.Background(), h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup: got %v, want ErrNotFound", err)
	}
}

func wantCount(t *testing.T, s Store, want int) {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count = %d, want %d", n, want)
	}
}

func mustCreate(t *testing.T, s Store, h TokenHash, u User, ttl time.Duration) time.Time {
	t.Helper()
	exp, err := s.CreateSession(context.Background(), h, u, ttl)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return exp
}

// openStoreModule provisions a store module as Caddy would and opens the
// store of appID; the returned cleanup is what Caddy calls when the config
// is unloaded (it runs at the end of the test too, once). setLogger gives
// the module a logger: a no-op one, or, when logs is not nil, one that
// records at level into *logs.
func openStoreModule(t testing.TB, m interface {
	StoreModule
	caddy.Provisioner
	caddy.CleanerUpper
}, setLogger func(*zap.Logger), level zapcore.Level, appID string, logs **observer.ObservedLogs) (Store, func()) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := m.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	setLogger(zap.NewNop())
	if logs != nil {
		core, obs := observer.New(level)
		setLogger(zap.New(core))
		*logs = obs
	}
	s, err := m.Open(ctx, appID)
	if err != nil {
		cancel()
		t.Fatalf("Open: %v", err)
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if err := m.Cleanup(); err != nil {
				t.Errorf("Cleanup: %v", err)
			}
			cancel()
		})
	}
	t.Cleanup(cleanup)
	return s, cleanup
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testStoreConformance is the behaviour every Store must have; it runs
// against the memory store and the Redis store.
func testStoreConformance(t *testing.T, open storeOpener) {
	ctx := context.Background()
	alice := User{OpenID: "o-alice", UnionID: "u-alice", SessionKey: "c2Vzc2lvbmtleTFzZXNzaQ=="}
	bob := User{OpenID: "o-bob", SessionKey: "Ym9ic2Vzc2lvbmtleTEyMw=="}

	t.Run("CreateLookup", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		h := testHash("a1")
		before := time.Now()
		exp := mustCreate(t, s, h, alice, time.Hour)
		if exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
			t.Fatalf("expiresAt %v is not an hour from now", exp)
		}
		sess := mustLookup(t, s, h)
		if sess.User != alice {
			t.Fatalf("user = %+v, want %+v", sess.User, alice)
		}
		if !sess.ExpiresAt.Equal(exp) {
			t.Fatalf("ExpiresAt = %v, CreateSession said %v", sess.ExpiresAt, exp)
		}
		wantNotFound(t, s, testHash("nope"))
	})

	t.Run("ExpiryIsFixed", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		h := testHash("short")
		const ttl = 300 * time.Millisecond
		start := time.Now()
		mustCreate(t, s, h, alice, ttl)
		long := testHash("long")
		mustCreate(t, s, long, alice, time.Hour)
		// Using the token must not extend it.
		for time.Since(start) < ttl-100*time.Millisecond {
			mustLookup(t, s, h)
			time.Sleep(20 * time.Millisecond)
		}
		eventually(t, 2*time.Second, "session expiry", func() bool {
			_, err := s.Lookup(ctx, h)
			return errors.Is(err, ErrNotFound)
		})
		if d := time.Since(start); d > ttl+time.Second {
			t.Fatalf("session lived %v with a %v TTL", d, ttl)
		}
		wantCount(t, s, 1)
		mustLookup(t, s, long)
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		h1, h2 := testHash("d1"), testHash("d2")
		mustCreate(t, s, h1, alice, time.Hour)
		mustCreate(t, s, h2, alice, time.Hour)
		mustLookup(t, s, h1) // warm any cache
		if err := s.DeleteSession(ctx, h1); err != nil {
			t.Fatal(err)
		}
		wantNotFound(t, s, h1)
		mustLookup(t, s, h2)
		if err := s.DeleteSession(ctx, h1); err != nil {
			t.Fatalf("deleting a missing session: %v", err)
		}
		if err := s.DeleteSession(ctx, testHash("never")); err != nil {
			t.Fatalf("deleting a missing session: %v", err)
		}
		wantCount(t, s, 1)
	})

	t.Run("RevokeUser", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		var hs []TokenHash
		for i := range 3 {
			h := testHash(fmt.Sprint("r", i))
			hs = append(hs, h)
			mustCreate(t, s, h, alice, time.Hour)
			mustLookup(t, s, h)
		}
		hb := testHash("rb")
		mustCreate(t, s, hb, bob, time.Hour)
		n, err := s.RevokeUser(ctx, alice.OpenID)
		if err != nil || n != 3 {
			t.Fatalf("RevokeUser = %d, %v; want 3, nil", n, err)
		}
		for _, h := range hs {
			wantNotFound(t, s, h)
		}
		mustLookup(t, s, hb)
		wantCount(t, s, 1)
		if n, err := s.RevokeUser(ctx, alice.OpenID); err != nil || n != 0 {
			t.Fatalf("second RevokeUser = %d, %v; want 0, nil", n, err)
		}
		if n, err := s.RevokeUser(ctx, "o-nobody"); err != nil || n != 0 {
			t.Fatalf("RevokeUser(unknown) = %d, %v; want 0, nil", n, err)
		}
		// The user can log in again afterwards.
		h := testHash("r-again")
		mustCreate(t, s, h, alice, time.Hour)
		if got := mustLookup(t, s, h).User; got != alice {
			t.Fatalf("after re-login: %+v", got)
		}
	})

	t.Run("ReLoginRotatesSessionKey", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		h1, h2 := testHash("k1"), testHash("k2")
		mustCreate(t, s, h1, alice, time.Hour)
		mustLookup(t, s, h1)
		again := User{OpenID: alice.OpenID, SessionKey: "bmV3c2Vzc2lvbmtleTEyMw=="} // no unionid this time
		mustCreate(t, s, h2, again, time.Hour)
		for _, h := range []TokenHash{h1, h2} {
			u := mustLookup(t, s, h).User
			if u.SessionKey != again.SessionKey {
				t.Fatalf("old token sees session key %q, want the new one", u.SessionKey)
			}
			if u.UnionID != alice.UnionID {
				t.Fatalf("unionid = %q, want it kept: %q", u.UnionID, alice.UnionID)
			}
		}
		// A new unionid replaces the old.
		mustCreate(t, s, testHash("k3"), User{OpenID: alice.OpenID, UnionID: "u-new", SessionKey: "x"}, time.Hour)
		if u := mustLookup(t, s, h1).User; u.UnionID != "u-new" || u.SessionKey != "x" {
			t.Fatalf("after third login: %+v", u)
		}
	})

	t.Run("BindPhone", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		h1, h2, hb := testHash("p1"), testHash("p2"), testHash("pb")
		mustCreate(t, s, h1, alice, time.Hour)
		mustCreate(t, s, h2, alice, time.Hour)
		mustCreate(t, s, hb, bob, time.Hour)
		mustLookup(t, s, h1)
		mustLookup(t, s, h2)
		if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
			t.Fatal(err)
		}
		for _, h := range []TokenHash{h1, h2} {
			u := mustLookup(t, s, h).User
			if u.Phone != "13800001111" || u.CountryCode != "86" {
				t.Fatalf("phone not seen by every token: %+v", u)
			}
			if u.SessionKey != alice.SessionKey || u.UnionID != alice.UnionID {
				t.Fatalf("binding a phone changed the user: %+v", u)
			}
		}
		if u := mustLookup(t, s, hb).User; u.Phone != "" {
			t.Fatalf("bob got alice's phone: %+v", u)
		}
		// A re-login keeps the bound phone.
		h3 := testHash("p3")
		mustCreate(t, s, h3, User{OpenID: alice.OpenID, SessionKey: "rotated"}, time.Hour)
		if u := mustLookup(t, s, h1).User; u.Phone != "13800001111" || u.SessionKey != "rotated" {
			t.Fatalf("after re-login: %+v", u)
		}
		if err := s.BindPhone(ctx, "o-nobody", "1", "86"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("BindPhone(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("LoginResults", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		sealed := []byte("sealed\x00answer")
		if err := s.PutLoginResult(ctx, "code-1", sealed, time.Minute); err != nil {
			t.Fatal(err)
		}
		sealed[0] = 'X' // the store must have kept its own copy
		got, err := s.GetLoginResult(ctx, "code-1")
		if err != nil || string(got) != "sealed\x00answer" {
			t.Fatalf("GetLoginResult = %q, %v", got, err)
		}
		if _, err := s.GetLoginResult(ctx, "code-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing result: %v, want ErrNotFound", err)
		}
		if err := s.PutLoginResult(ctx, "code-short", []byte("x"), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, "login result expiry", func() bool {
			_, err := s.GetLoginResult(ctx, "code-short")
			return errors.Is(err, ErrNotFound)
		})
	})

	t.Run("Count", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		wantCount(t, s, 0)
		for i := range 5 {
			mustCreate(t, s, testHash(fmt.Sprint("c", i)), User{OpenID: fmt.Sprint("o-", i%2), SessionKey: "k"}, time.Hour)
		}
		mustCreate(t, s, testHash("c-short"), alice, 50*time.Millisecond)
		wantCount(t, s, 6)
		if err := s.DeleteSession(ctx, testHash("c0")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		wantCount(t, s, 4)
		if _, err := s.RevokeUser(ctx, "o-1"); err != nil {
			t.Fatal(err)
		}
		wantCount(t, s, 2)
	})

	t.Run("AppsIsolated", func(t *testing.T) {
		a, b := open(t, appIDFor(t, "a")), open(t, appIDFor(t, "b"))
		h := testHash("iso")
		mustCreate(t, a, h, alice, time.Hour)
		wantNotFound(t, b, h)
		wantCount(t, b, 0)
		if n, _ := b.RevokeUser(ctx, alice.OpenID); n != 0 {
			t.Fatalf("revoke in app b removed %d sessions", n)
		}
		if err := b.BindPhone(ctx, alice.OpenID, "1", "86"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("BindPhone in app b: %v", err)
		}
		if err := a.PutLoginResult(ctx, "code", []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := b.GetLoginResult(ctx, "code"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("login result leaked across apps: %v", err)
		}
		// The same token hash in b is a separate session.
		mustCreate(t, b, h, bob, time.Hour)
		if u := mustLookup(t, a, h).User; u != alice {
			t.Fatalf("app a sees %+v", u)
		}
		if u := mustLookup(t, b, h).User; u != bob {
			t.Fatalf("app b sees %+v", u)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, appIDFor(t, ""))
		const workers, ops = 8, 150
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := User{OpenID: fmt.Sprint("o-", w%3), SessionKey: fmt.Sprint("key-", w)}
				for i := range ops {
					h := testHash(fmt.Sprint(w, "-", i))
					if _, err := s.CreateSession(ctx, h, u, time.Hour); err != nil {
						errc <- err
						return
					}
					if _, err := s.Lookup(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
						errc <- err // a concurrent revoke may have removed it
						return
					}
					var err error
					switch i % 10 {
					case 1:
						err = s.DeleteSession(ctx, h)
					case 3:
						err = s.BindPhone(ctx, u.OpenID, "13800001111", "86")
						if errors.Is(err, ErrNotFound) {
							err = nil
						}
					case 5:
						_, err = s.RevokeUser(ctx, u.OpenID)
					case 7:
						_, err = s.Count(ctx)
					case 9:
						err = s.PutLoginResult(ctx, fmt.Sprint("c", w, i), []byte("r"), time.Minute)
					}
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		if _, err := s.Count(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
