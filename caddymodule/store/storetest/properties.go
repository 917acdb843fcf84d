package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// The properties of the conformance suite, one method each (Run lists
// them). Each opens stores of app ids of its own.

// users are the two users the properties log in.
func users() (alice, bob store.User) {
	return store.User{OpenID: "o-alice", UnionID: "u-alice", SessionKey: "c2Vzc2lvbmtleTFzZXNzaQ=="},
		store.User{OpenID: "o-bob", SessionKey: "Ym9ic2Vzc2lvbmtleTEyMw=="}
}

// createLookup: a created session is found, with its user and the
// expiry CreateSession reported; an unknown hash is not.
func (suite Suite) createLookup(t *testing.T) {
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	h := Hash("a1")
	before := time.Now()
	exp := MustCreate(t, s, h, alice, time.Hour)
	if exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiresAt %v is not an hour from now", exp)
	}
	sess := MustLookup(t, s, h)
	if sess.User != alice {
		t.Fatalf("user = %+v, want %+v", sess.User, alice)
	}
	if !sess.ExpiresAt.Equal(exp) {
		t.Fatalf("ExpiresAt = %v, CreateSession said %v", sess.ExpiresAt, exp)
	}
	WantNotFound(t, s, Hash("nope"))
}

// expiryIsFixed: a session ends at its TTL however often it is used,
// and Count forgets it.
func (suite Suite) expiryIsFixed(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	h := Hash("short")
	const ttl = 300 * time.Millisecond
	start := time.Now()
	MustCreate(t, s, h, alice, ttl)
	long := Hash("long")
	MustCreate(t, s, long, alice, time.Hour)
	// Using the token must not extend it.
	for time.Since(start) < ttl-100*time.Millisecond {
		MustLookup(t, s, h)
		time.Sleep(20 * time.Millisecond)
	}
	gatewaytest.Eventually(t, 2*time.Second, "session expiry", func() bool {
		_, err := s.Lookup(ctx, h)
		return errors.Is(err, store.ErrNotFound)
	})
	if d := time.Since(start); d > ttl+time.Second {
		t.Fatalf("session lived %v with a %v TTL", d, ttl)
	}
	suite.wantCount(t, s, 1)
	MustLookup(t, s, long)
}

// deleteSession: a logout ends that session only, and deleting a
// missing one is no error.
func (suite Suite) deleteSession(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	h1, h2 := Hash("d1"), Hash("d2")
	MustCreate(t, s, h1, alice, time.Hour)
	MustCreate(t, s, h2, alice, time.Hour)
	MustLookup(t, s, h1) // warm any cache
	if err := s.DeleteSession(ctx, h1); err != nil {
		t.Fatal(err)
	}
	WantNotFound(t, s, h1)
	MustLookup(t, s, h2)
	if err := s.DeleteSession(ctx, h1); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
	if err := s.DeleteSession(ctx, Hash("never")); err != nil {
		t.Fatalf("deleting a missing session: %v", err)
	}
	suite.wantCount(t, s, 1)
}

// revokeUser: a revoke ends every session of the user at once, reports
// how many, touches no other user, and the user can log in again.
func (suite Suite) revokeUser(t *testing.T) {
	ctx := context.Background()
	alice, bob := users()
	s := suite.Open(t, AppID(t, ""))
	var hs []store.TokenHash
	for i := range 3 {
		h := Hash(fmt.Sprint("r", i))
		hs = append(hs, h)
		MustCreate(t, s, h, alice, time.Hour)
		MustLookup(t, s, h)
	}
	hb := Hash("rb")
	MustCreate(t, s, hb, bob, time.Hour)
	n, err := s.RevokeUser(ctx, alice.OpenID)
	if err != nil || n != 3 {
		t.Fatalf("RevokeUser = %d, %v; want 3, nil", n, err)
	}
	for _, h := range hs {
		WantNotFound(t, s, h)
	}
	MustLookup(t, s, hb)
	suite.wantCount(t, s, 1)
	if n, err := s.RevokeUser(ctx, alice.OpenID); err != nil || n != 0 {
		t.Fatalf("second RevokeUser = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.RevokeUser(ctx, "o-nobody"); err != nil || n != 0 {
		t.Fatalf("RevokeUser(unknown) = %d, %v; want 0, nil", n, err)
	}
	// The user can log in again afterwards.
	h := Hash("r-again")
	MustCreate(t, s, h, alice, time.Hour)
	if got := MustLookup(t, s, h).User; got != alice {
		t.Fatalf("after re-login: %+v", got)
	}
}

// reLoginRotatesSessionKey: every token of a user sees the newest
// session key; an empty unionid keeps the old one, a new one replaces
// it.
func (suite Suite) reLoginRotatesSessionKey(t *testing.T) {
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	h1, h2 := Hash("k1"), Hash("k2")
	MustCreate(t, s, h1, alice, time.Hour)
	MustLookup(t, s, h1)
	again := store.User{OpenID: alice.OpenID, SessionKey: "bmV3c2Vzc2lvbmtleTEyMw=="} // no unionid this time
	MustCreate(t, s, h2, again, time.Hour)
	for _, h := range []store.TokenHash{h1, h2} {
		u := MustLookup(t, s, h).User
		if u.SessionKey != again.SessionKey {
			t.Fatalf("old token sees session key %q, want the new one", u.SessionKey)
		}
		if u.UnionID != alice.UnionID {
			t.Fatalf("unionid = %q, want it kept: %q", u.UnionID, alice.UnionID)
		}
	}
	// A new unionid replaces the old.
	MustCreate(t, s, Hash("k3"), store.User{OpenID: alice.OpenID, UnionID: "u-new", SessionKey: "x"}, time.Hour)
	if u := MustLookup(t, s, h1).User; u.UnionID != "u-new" || u.SessionKey != "x" {
		t.Fatalf("after third login: %+v", u)
	}
}

// bindPhone: a bound phone is seen by every token of the user, no one
// else's, changes nothing else, and survives a re-login; an unknown
// user is ErrNotFound.
func (suite Suite) bindPhone(t *testing.T) {
	ctx := context.Background()
	alice, bob := users()
	s := suite.Open(t, AppID(t, ""))
	h1, h2, hb := Hash("p1"), Hash("p2"), Hash("pb")
	MustCreate(t, s, h1, alice, time.Hour)
	MustCreate(t, s, h2, alice, time.Hour)
	MustCreate(t, s, hb, bob, time.Hour)
	MustLookup(t, s, h1)
	MustLookup(t, s, h2)
	if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.TokenHash{h1, h2} {
		u := MustLookup(t, s, h).User
		if u.Phone != "13800001111" || u.CountryCode != "86" {
			t.Fatalf("phone not seen by every token: %+v", u)
		}
		if u.SessionKey != alice.SessionKey || u.UnionID != alice.UnionID {
			t.Fatalf("binding a phone changed the user: %+v", u)
		}
	}
	if u := MustLookup(t, s, hb).User; u.Phone != "" {
		t.Fatalf("bob got alice's phone: %+v", u)
	}
	// A re-login keeps the bound phone.
	h3 := Hash("p3")
	MustCreate(t, s, h3, store.User{OpenID: alice.OpenID, SessionKey: "rotated"}, time.Hour)
	if u := MustLookup(t, s, h1).User; u.Phone != "13800001111" || u.SessionKey != "rotated" {
		t.Fatalf("after re-login: %+v", u)
	}
	if err := s.BindPhone(ctx, "o-nobody", "1", "86"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BindPhone(unknown) = %v, want store.ErrNotFound", err)
	}
}

// previousSessionKey: the key a rotation replaced is kept for the
// grace, one rotation deep, never across a revoke or between apps.
func (suite Suite) previousSessionKey(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	wantPrev := func(want string) {
		t.Helper()
		got, err := s.PreviousSessionKey(ctx, alice.OpenID)
		if want == "" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("PreviousSessionKey = %q, %v; want ErrNotFound", got, err)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("PreviousSessionKey = %q, %v; want %q", got, err, want)
		}
	}
	login := func(label, key string, grace time.Duration) {
		t.Helper()
		u := alice
		u.SessionKey = key
		if _, err := s.CreateSession(ctx, Hash(label), u, time.Hour, grace); err != nil {
			t.Fatal(err)
		}
	}
	login("g1", "key-1", time.Hour)
	wantPrev("") // a first login replaces nothing
	login("g2", "key-2", time.Hour)
	wantPrev("key-1")
	if u := MustLookup(t, s, Hash("g1")).User; u.SessionKey != "key-2" {
		t.Fatalf("every token must see the newest key, got %q", u.SessionKey)
	}
	login("g3", "key-2", time.Hour) // WeChat gave the same key again
	wantPrev("key-1")
	login("g4", "key-3", time.Hour)
	wantPrev("key-2") // key-1 is two rotations old: gone
	login("g5", "key-4", 0)
	wantPrev("") // grace 0 keeps nothing
	login("g6", "key-5", 300*time.Millisecond)
	wantPrev("key-4")
	gatewaytest.Eventually(t, 3*time.Second, "previous key expiry", func() bool {
		_, err := s.PreviousSessionKey(ctx, alice.OpenID)
		return errors.Is(err, store.ErrNotFound)
	})
	login("g7", "key-6", time.Hour)
	wantPrev("key-5")
	if _, err := s.RevokeUser(ctx, alice.OpenID); err != nil {
		t.Fatal(err)
	}
	wantPrev("") // a revoked user keeps no key at all
	if _, err := s.PreviousSessionKey(ctx, "o-nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PreviousSessionKey(unknown) = %v, want ErrNotFound", err)
	}
	other := suite.Open(t, AppID(t, "other"))
	if _, err := other.PreviousSessionKey(ctx, alice.OpenID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("previous key leaked across apps: %v", err)
	}
}

// badInput: a session without an openid or with a zero TTL is a store
// error and stores nothing.
func (suite Suite) badInput(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	if _, err := s.CreateSession(ctx, Hash("bad1"), store.User{SessionKey: "k"}, time.Hour, 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateSession without openid = %v, want a store error", err)
	}
	if _, err := s.CreateSession(ctx, Hash("bad2"), alice, 0, 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateSession with ttl 0 = %v, want a store error", err)
	}
	WantNotFound(t, s, Hash("bad1"))
	WantNotFound(t, s, Hash("bad2"))
	suite.wantCount(t, s, 0)
}

// loginResults: a login result is kept as a copy of its own until its TTL.
func (suite Suite) loginResults(t *testing.T) {
	ctx := context.Background()
	s := suite.Open(t, AppID(t, ""))
	sealed := []byte("sealed\x00answer")
	if err := s.PutLoginResult(ctx, "code-1", sealed, time.Minute); err != nil {
		t.Fatal(err)
	}
	sealed[0] = 'X' // the store must have kept its own copy
	got, err := s.GetLoginResult(ctx, "code-1")
	if err != nil || string(got) != "sealed\x00answer" {
		t.Fatalf("GetLoginResult = %q, %v", got, err)
	}
	if _, err := s.GetLoginResult(ctx, "code-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing result: %v, want store.ErrNotFound", err)
	}
	if err := s.PutLoginResult(ctx, "code-short", []byte("x"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 2*time.Second, "login result expiry", func() bool {
		_, err := s.GetLoginResult(ctx, "code-short")
		return errors.Is(err, store.ErrNotFound)
	})
}

// count: Count follows logins, logouts, expiry and revokes.
func (suite Suite) count(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	suite.wantCount(t, s, 0)
	for i := range 5 {
		MustCreate(t, s, Hash(fmt.Sprint("c", i)), store.User{OpenID: fmt.Sprint("o-", i%2), SessionKey: "k"}, time.Hour)
	}
	suite.wantCount(t, s, 5)
	// A session of 50 ms counts while it lives. On a loaded machine the
	// count can come after it expired: 5 is right then, and only then.
	born := time.Now()
	MustCreate(t, s, Hash("c-short"), alice, 50*time.Millisecond)
	if suite.Settle != nil {
		suite.Settle(t, s)
	}
	n, err := s.Count(ctx)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if alive := time.Since(born) < 50*time.Millisecond; n != 6 && (alive || n != 5) {
		t.Fatalf("Count = %d with a 50 ms session %v old, want 6 (or 5 once it expired)", n, time.Since(born))
	}
	if err := s.DeleteSession(ctx, Hash("c0")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	suite.wantCount(t, s, 4)
	if _, err := s.RevokeUser(ctx, "o-1"); err != nil {
		t.Fatal(err)
	}
	suite.wantCount(t, s, 2)
}

// appsIsolated: two apps share nothing: sessions, revokes, phones,
// login results.
func (suite Suite) appsIsolated(t *testing.T) {
	ctx := context.Background()
	alice, bob := users()
	a, b := suite.Open(t, AppID(t, "a")), suite.Open(t, AppID(t, "b"))
	h := Hash("iso")
	MustCreate(t, a, h, alice, time.Hour)
	WantNotFound(t, b, h)
	suite.wantCount(t, b, 0)
	if n, _ := b.RevokeUser(ctx, alice.OpenID); n != 0 {
		t.Fatalf("revoke in app b removed %d sessions", n)
	}
	if err := b.BindPhone(ctx, alice.OpenID, "1", "86"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("BindPhone in app b: %v", err)
	}
	if err := a.PutLoginResult(ctx, "code", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetLoginResult(ctx, "code"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("login result leaked across apps: %v", err)
	}
	// The same token hash in b is a separate session.
	MustCreate(t, b, h, bob, time.Hour)
	if u := MustLookup(t, a, h).User; u != alice {
		t.Fatalf("app a sees %+v", u)
	}
	if u := MustLookup(t, b, h).User; u != bob {
		t.Fatalf("app b sees %+v", u)
	}
}

// concurrent: every operation at once from several goroutines, without
// an error.
func (suite Suite) concurrent(t *testing.T) {
	ctx := context.Background()
	s := suite.Open(t, AppID(t, ""))
	const workers, ops = 8, 150
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := store.User{OpenID: fmt.Sprint("o-", w%3), SessionKey: fmt.Sprint("key-", w)}
			for i := range ops {
				h := Hash(fmt.Sprint(w, "-", i))
				if _, err := s.CreateSession(ctx, h, u, time.Hour, time.Minute); err != nil {
					errc <- err
					return
				}
				if _, err := s.Lookup(ctx, h); err != nil && !errors.Is(err, store.ErrNotFound) {
					errc <- err // a concurrent revoke may have removed it
					return
				}
				var err error
				switch i % 10 {
				case 1:
					err = s.DeleteSession(ctx, h)
				case 3:
					err = s.BindPhone(ctx, u.OpenID, "13800001111", "86")
					if errors.Is(err, store.ErrNotFound) {
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
}
