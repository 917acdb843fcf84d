package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
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
	Eventually(t, 2*time.Second, "no user after the last logout", func() bool {
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
	Eventually(t, 3*time.Second, "no user once the session expired", func() bool {
		_, err := s.User(ctx, alice.OpenID)
		return errors.Is(err, store.ErrNotFound)
	})
}
