// Package storetest is the conformance suite of session stores, in the
// spirit of testing/fstest: a store written for the wechat_auth handler
// (one of ours or a third party's wechat_auth.stores.* module) passes it
// to show it does everything the handler relies on.
//
//	func TestConformance(t *testing.T) {
//		storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
//			return openMyStore(t, appID) // closed by t.Cleanup
//		}}.Run(t)
//	}
package storetest

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

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// Suite describes the store under test.
type Suite struct {
	// Open opens the store of appID for one test and arranges its
	// release (t.Cleanup). Stores opened with the same app id within one
	// test share their sessions, as two configs (or two gateways) of one
	// app do.
	Open func(t *testing.T, appID string) store.Store

	// Settle, when set, runs the store's background housekeeping now
	// (expiry sweep, session counters), so that Count can be checked
	// exactly. Without it, Count is polled for up to five seconds.
	Settle func(t *testing.T, s store.Store)
}

// Hash gives a distinct, repeatable token hash per label.
func Hash(label string) store.TokenHash { return store.HashToken("token-" + label) }

// SeqHash gives the i-th of a series of token hashes without keeping them.
func SeqHash(i int) store.TokenHash {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// AppID makes an app id unique to the running (sub)test, so that tests
// sharing one Redis never see each other's keys.
func AppID(t testing.TB, suffix string) string {
	r := strings.NewReplacer("/", "_", " ", "_", "=", "_")
	return fmt.Sprintf("wx_%s_%s_%d", r.Replace(t.Name()), suffix, time.Now().UnixNano())
}

// MustLookup looks th up and fails the test when it is not found.
func MustLookup(t testing.TB, s store.Store, th store.TokenHash) store.Session {
	t.Helper()
	sess, err := s.Lookup(context.Background(), th)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return sess
}

// WantNotFound fails the test unless th is unknown to s.
func WantNotFound(t testing.TB, s store.Store, th store.TokenHash) {
	t.Helper()
	if _, err := s.Lookup(context.Background(), th); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Lookup: got %v, want ErrNotFound", err)
	}
}

// MustCreate creates a session (with a one-minute key grace) and fails
// the test on error.
func MustCreate(t testing.TB, s store.Store, th store.TokenHash, u store.User, ttl time.Duration) time.Time {
	t.Helper()
	exp, err := s.CreateSession(context.Background(), th, u, ttl, time.Minute)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return exp
}

// wantCount checks Count: exactly after Settle, or within five seconds.
func (suite Suite) wantCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	count := func() int {
		n, err := s.Count(context.Background())
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		return n
	}
	if suite.Settle != nil {
		suite.Settle(t, s)
		if n := count(); n != want {
			t.Fatalf("Count = %d after Settle, want %d", n, want)
		}
		return
	}
	gatewaytest.Eventually(t, 5*time.Second, fmt.Sprintf("Count = %d", want), func() bool { return count() == want })
}

// Run runs the suite, one subtest per property. Every subtest opens
// stores of app ids of its own.
func (suite Suite) Run(t *testing.T) {
	t.Run("CreateLookup", suite.createLookup)
	t.Run("ExpiryIsFixed", suite.expiryIsFixed)
	t.Run("Delete", suite.deleteSession)
	t.Run("RevokeUser", suite.revokeUser)
	t.Run("ReLoginRotatesSessionKey", suite.reLoginRotatesSessionKey)
	t.Run("BindPhone", suite.bindPhone)
	t.Run("PreviousSessionKey", suite.previousSessionKey)
	t.Run("User", suite.userRecord)
	t.Run("LastLogoutEndsUser", suite.lastLogoutEndsUser)
	t.Run("ReplaceSessionKey", suite.replaceSessionKey)
	t.Run("BadInput", suite.badInput)
	t.Run("LoginResults", suite.loginResults)
	t.Run("Count", suite.count)
	t.Run("AppsIsolated", suite.appsIsolated)
	t.Run("Concurrent", suite.concurrent)
}

// OpenModule provisions a store module as Caddy would (Provision, then
// Validate), lets configure adjust it (a test's logger, say; nil for
// none), and opens the store of appID. The returned cleanup is what Caddy
// calls when the config is unloaded; it also runs when the test ends,
// once in all.
func OpenModule(t testing.TB, m store.Module, appID string, configure func()) (store.Store, func()) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if p, ok := m.(caddy.Provisioner); ok {
		if err := p.Provision(ctx); err != nil {
			cancel()
			t.Fatalf("Provision: %v", err)
		}
	}
	if v, ok := m.(caddy.Validator); ok {
		if err := v.Validate(); err != nil {
			cancel()
			t.Fatalf("Validate: %v", err)
		}
	}
	if configure != nil {
		configure()
	}
	s, err := m.Open(ctx, appID)
	if err != nil {
		cancel()
		t.Fatalf("Open: %v", err)
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if c, ok := m.(caddy.CleanerUpper); ok {
				if err := c.Cleanup(); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			}
			cancel()
		})
	}
	t.Cleanup(cleanup)
	return s, cleanup
}
