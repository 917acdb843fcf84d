package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// The last logout of a user deletes the user's keys (the record with its
// session key, phone and unionid, the token index, the previous key),
// as a revoke does; a logout that leaves a session keeps them.
func TestRedisStoreLastLogoutDeletesUser(t *testing.T) {
	for _, mode := range []string{ModeStandalone, ModeCluster} {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			s := d.open(t, storetest.AppID(t, ""), withCache(0))
			raw := d.raw(t)
			ctx := context.Background()
			u := store.User{OpenID: "o-erin", UnionID: "u-erin", SessionKey: "k1"}
			a, b := storetest.Hash("a"), storetest.Hash("b")
			storetest.MustCreate(t, s, a, u, time.Hour)
			u.SessionKey = "k2"
			storetest.MustCreate(t, s, b, u, time.Hour) // a rotation: a previous key
			if err := s.BindPhone(ctx, u.OpenID, "13800001111", "86"); err != nil {
				t.Fatal(err)
			}
			left := func() int64 {
				t.Helper()
				n, err := raw.Exists(ctx, s.userKeys(u.OpenID)...).Result()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := left(); n != 3 {
				t.Fatalf("set-up: %d of the user's 3 keys", n)
			}
			if err := s.DeleteSession(ctx, a); err != nil {
				t.Fatal(err)
			}
			if n := left(); n != 3 {
				t.Fatalf("a logout with a session left: %d of the user's 3 keys remain", n)
			}
			if err := s.DeleteSession(ctx, b); err != nil {
				t.Fatal(err)
			}
			if n := left(); n != 0 {
				t.Fatalf("after the last logout %d of the user's keys remain", n)
			}
		})
	}
}

// A login racing the last logout of its user keeps a whole record: the
// logout drops the record only when no live token is left, in the script
// that drops its own token, so the login indexed its token before (the
// record stays) or writes one afresh after.
func TestRedisStoreLogoutRacingLogin(t *testing.T) {
	for _, mode := range []string{ModeStandalone, ModeCluster} {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			s := d.open(t, storetest.AppID(t, ""), withCache(0))
			raw := d.raw(t)
			ctx := context.Background()
			for i := range 40 {
				openid := fmt.Sprintf("o-race-%d", i)
				old, fresh := storetest.Hash(openid+"-old"), storetest.Hash(openid+"-new")
				storetest.MustCreate(t, s, old, store.User{OpenID: openid, SessionKey: "k1"}, time.Hour)
				var wg sync.WaitGroup
				wg.Go(func() {
					if err := s.DeleteSession(ctx, old); err != nil {
						t.Error(err)
					}
				})
				wg.Go(func() {
					if _, err := s.CreateSession(ctx, fresh, store.User{OpenID: openid, SessionKey: "k2"}, time.Hour, time.Minute); err != nil {
						t.Error(err)
					}
				})
				wg.Wait()
				if u := storetest.MustLookup(t, s, fresh).User; u.SessionKey != "k2" {
					t.Fatalf("round %d: the login's session holds %+v", i, u)
				}
				if u, err := s.User(ctx, openid); err != nil || u.SessionKey != "k2" {
					t.Fatalf("round %d: User = %+v, %v; want the login's record", i, u, err)
				}
				if n, err := raw.Exists(ctx, s.userKey(openid), s.tokensKey(openid)).Result(); err != nil || n != 2 {
					t.Fatalf("round %d: %d of the record and token index, %v", i, n, err)
				}
				storetest.WantNotFound(t, s, old)
			}
		})
	}
}
