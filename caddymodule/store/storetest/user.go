package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// userRecord: User answers the user record with the newest session key
// (and phone) while the user has a live session, from another store of
// the same app too, and ErrNotFound for a user never seen, logged out of
// every session, revoked or expired.
func (suite Suite) userRecord(t *testing.T) {
	ctx := context.Background()
	alice, bob := users()
	appID := AppID(t, "")
	s, other := suite.Open(t, appID), suite.Open(t, appID)
	wantUser := func(s store.Store, openid string, want store.User) {
		t.Helper()
		u, err := s.User(ctx, openid)
		if err != nil || u != want {
			t.Fatalf("User(%s) = %+v, %v; want %+v", openid, u, err, want)
		}
	}
	wantNone := func(s store.Store, openid string) {
		t.Helper()
		if u, err := s.User(ctx, openid); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("User(%s) = %+v, %v; want ErrNotFound", openid, u, err)
		}
	}
	wantNone(s, alice.OpenID)

	h1, h2 := Hash("u1"), Hash("u2")
	MustCreate(t, s, h1, alice, time.Hour)
	wantUser(s, alice.OpenID, alice)
	wantUser(other, alice.OpenID, alice)
	wantNone(s, bob.OpenID)

	// A re-login's key and a bound phone are in the record at once.
	rotated := store.User{OpenID: alice.OpenID, SessionKey: "cm90YXRlZHNlc3Npb25rZQ=="}
	MustCreate(t, s, h2, rotated, time.Hour)
	if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	want := alice
	want.SessionKey, want.Phone, want.CountryCode = rotated.SessionKey, "13800001111", "86"
	wantUser(s, alice.OpenID, want)
	wantUser(other, alice.OpenID, want)

	// Logged out of one session: still a user; of both: none.
	if err := s.DeleteSession(ctx, h1); err != nil {
		t.Fatal(err)
	}
	wantUser(other, alice.OpenID, want)
	if err := s.DeleteSession(ctx, h2); err != nil {
		t.Fatal(err)
	}
	gatewaytest.Eventually(t, 2*time.Second, "no user after the last logout", func() bool {
		_, err := other.User(ctx, alice.OpenID)
		return errors.Is(err, store.ErrNotFound)
	})
	wantNone(s, alice.OpenID)

	// Revoked: none.
	MustCreate(t, s, Hash("ub"), bob, time.Hour)
	wantUser(s, bob.OpenID, bob)
	if _, err := s.RevokeUser(ctx, bob.OpenID); err != nil {
		t.Fatal(err)
	}
	wantNone(s, bob.OpenID)
	wantNone(other, bob.OpenID)

	// Expired: none.
	MustCreate(t, s, Hash("ushort"), alice, 300*time.Millisecond)
	if u, err := s.User(ctx, alice.OpenID); err != nil || u.SessionKey != alice.SessionKey {
		t.Fatalf("User after a new login = %+v, %v", u, err)
	}
	gatewaytest.Eventually(t, 3*time.Second, "no user once the session expired", func() bool {
		_, err := s.User(ctx, alice.OpenID)
		return errors.Is(err, store.ErrNotFound)
	})
}

// lastLogoutEndsUser: the user record goes with the user's last
// session, as at a revoke: a login after the last logout starts afresh,
// without the phone, unionid or previous session key of the record
// before.
func (suite Suite) lastLogoutEndsUser(t *testing.T) {
	ctx := context.Background()
	alice, _ := users()
	s := suite.Open(t, AppID(t, ""))
	h1, h2 := Hash("ll1"), Hash("ll2")
	MustCreate(t, s, h1, alice, time.Hour)
	MustCreate(t, s, h2, alice, time.Hour)
	if err := s.BindPhone(ctx, alice.OpenID, "13800001111", "86"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.TokenHash{h1, h2} {
		if err := s.DeleteSession(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	fresh := store.User{OpenID: alice.OpenID, SessionKey: "ZnJlc2hzZXNzaW9ua2V5MTI="}
	h3 := Hash("ll3")
	MustCreate(t, s, h3, fresh, time.Hour)
	if got := MustLookup(t, s, h3).User; got != fresh {
		t.Fatalf("a login after the last logout: %+v, want %+v (nothing of the record before)", got, fresh)
	}
	if u, err := s.User(ctx, alice.OpenID); err != nil || u != fresh {
		t.Fatalf("User after the new login = %+v, %v; want %+v", u, err, fresh)
	}
	if k, err := s.PreviousSessionKey(ctx, alice.OpenID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PreviousSessionKey after a fresh login = %q, %v; want ErrNotFound", k, err)
	}
}

// replaceSessionKey: a replaced key is seen by every token of the user
// (through another store of the app too), the sessions keep their
// expiry, the previous key is gone; a key that is no longer the old one
// is left alone, and a user without a live session is ErrNotFound.
func (suite Suite) replaceSessionKey(t *testing.T) {
	ctx := context.Background()
	alice, bob := users()
	appID := AppID(t, "")
	s, other := suite.Open(t, appID), suite.Open(t, appID)
	h1, h2 := Hash("rk1"), Hash("rk2")
	MustCreate(t, s, h1, store.User{OpenID: alice.OpenID, SessionKey: "b2xkZXJzZXNzaW9ua2V5MQ=="}, time.Hour)
	MustCreate(t, s, h2, alice, time.Hour) // a rotation: a previous key
	exp1 := MustLookup(t, other, h1).ExpiresAt
	MustLookup(t, other, h2) // warm any cache
	if _, err := s.PreviousSessionKey(ctx, alice.OpenID); err != nil {
		t.Fatalf("PreviousSessionKey before: %v", err)
	}

	const reset = "cmVzZXRzZXNzaW9ua2V5MTI="
	ok, err := s.ReplaceSessionKey(ctx, alice.OpenID, alice.SessionKey, reset)
	if err != nil || !ok {
		t.Fatalf("ReplaceSessionKey = %v, %v; want true, nil", ok, err)
	}
	gatewaytest.Eventually(t, 2*time.Second, "every token sees the new key", func() bool {
		for _, st := range []store.Store{s, other} {
			for _, h := range []store.TokenHash{h1, h2} {
				if MustLookup(t, st, h).User.SessionKey != reset {
					return false
				}
			}
		}
		return true
	})
	if got := MustLookup(t, other, h1); !got.ExpiresAt.Equal(exp1) || got.User.UnionID != alice.UnionID {
		t.Fatalf("after the replacement: %+v, expiry was %v", got, exp1)
	}
	if u, err := other.User(ctx, alice.OpenID); err != nil || u.SessionKey != reset {
		t.Fatalf("User = %+v, %v", u, err)
	}
	if k, err := s.PreviousSessionKey(ctx, alice.OpenID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PreviousSessionKey after = %q, %v; want ErrNotFound", k, err)
	}

	// The old key again: not the key any more, nothing changes.
	if ok, err := s.ReplaceSessionKey(ctx, alice.OpenID, alice.SessionKey, "c3RhbGVzdGFsZXN0YWxlMQ=="); err != nil || ok {
		t.Fatalf("ReplaceSessionKey of a stale key = %v, %v; want false, nil", ok, err)
	}
	if u, _ := s.User(ctx, alice.OpenID); u.SessionKey != reset {
		t.Fatalf("a stale replacement changed the key: %+v", u)
	}
	if _, err := s.ReplaceSessionKey(ctx, bob.OpenID, bob.SessionKey, reset); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSessionKey(unknown) = %v, want ErrNotFound", err)
	}
}
