package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// clock is a settable clock for WithClock and SetClock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func phone(t *testing.T, c *wechat.Client, code string) *wechat.PhoneInfo {
	t.Helper()
	p, err := c.PhoneNumber(ctx(t), code, openidOf(code))
	if err != nil {
		t.Fatalf("PhoneNumber(%q): %v", code, err)
	}
	return p
}

func TestTokenCached(t *testing.T) {
	srv, c := newPair(t)
	const n = 10
	for i := range n {
		phone(t, c, fmt.Sprintf("user%d", i))
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 1 {
		t.Errorf("stable_token calls = %d, want 1", got)
	}
	if got := srv.Calls(wechattest.APIPhoneNumber); got != n {
		t.Errorf("getuserphonenumber calls = %d, want %d", got, n)
	}
}

// TestTokenConcurrent: callers that need a token at the same time share
// one fetch. The delay makes them overlap; whoever comes after the fetch
// finds the cache, so the count is 1 whatever the timing.
func TestTokenConcurrent(t *testing.T) {
	srv, c := newPair(t)
	srv.SetDelay(wechattest.APIStableToken, 100*time.Millisecond)
	const n = 20
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tok, err := c.TokenSource().Token(ctx(t))
			errs[i] = err
			if err == nil {
				toks[i] = tok.AccessToken
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] || toks[i] == "" {
			t.Fatalf("caller %d: token %q, err %v", i, toks[i], errs[i])
		}
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 1 {
		t.Errorf("stable_token calls = %d, want 1", got)
	}
}

func TestConcurrentPhoneCalls(t *testing.T) {
	srv, c := newPair(t)
	srv.SetDelay(wechattest.APIStableToken, 50*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := c.PhoneNumber(ctx(t), fmt.Sprintf("u%d", i), openidOf(fmt.Sprintf("u%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := srv.Calls(wechattest.APIStableToken); got != 1 {
		t.Errorf("stable_token calls = %d, want 1", got)
	}
}

func TestTokenRefresh(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(*wechattest.Server, *clock)
		wantStable int // stable_token calls after the initial one
		wantForce  int
		wantPhone  int
	}{
		{name: "40001 after revocation", setup: func(s *wechattest.Server, _ *clock) { s.RevokeTokens() },
			wantStable: 1, wantForce: 0, wantPhone: 2},
		{name: "42001 after expiry", setup: func(_ *wechattest.Server, fc *clock) { fc.Advance(3 * time.Hour) },
			wantStable: 1, wantForce: 0, wantPhone: 2},
		// WeChat says the token is bad but a plain refresh hands it back:
		// only then force_refresh.
		{name: "42001 on a token WeChat still hands out", setup: func(s *wechattest.Server, _ *clock) {
			s.FailNext(wechattest.APIPhoneNumber, 42001, 1)
		}, wantStable: 2, wantForce: 1, wantPhone: 2},
		{name: "40014 on a token WeChat still hands out", setup: func(s *wechattest.Server, _ *clock) {
			s.FailNext(wechattest.APIPhoneNumber, 40014, 1)
		}, wantStable: 2, wantForce: 1, wantPhone: 2},
		{name: "sticky dead token", setup: func(s *wechattest.Server, _ *clock) {
			s.SetStickyDeadToken(true)
			s.RevokeTokens()
		}, wantStable: 2, wantForce: 1, wantPhone: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newPair(t)
			fc := newClock()
			srv.SetClock(fc.Now)
			old, err := c.TokenSource().Token(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(srv, fc)
			p := phone(t, c, "alice")
			if p.PurePhoneNumber == "" {
				t.Errorf("no phone number")
			}
			if got := srv.Calls(wechattest.APIStableToken); got != 1+tt.wantStable {
				t.Errorf("stable_token calls = %d, want %d", got, 1+tt.wantStable)
			}
			if got := srv.ForceRefreshes(); got != tt.wantForce {
				t.Errorf("force refreshes = %d, want %d", got, tt.wantForce)
			}
			if got := srv.Calls(wechattest.APIPhoneNumber); got != tt.wantPhone {
				t.Errorf("phone calls = %d, want %d", got, tt.wantPhone)
			}
			now, err := c.TokenSource().Token(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantForce > 0 || tt.name != "42001 on a token WeChat still hands out" {
				if now.AccessToken == old.AccessToken {
					t.Errorf("the rejected token is still cached")
				}
			}
			// The refreshed token is cached: a further call fetches nothing.
			phone(t, c, "alice:2")
			if got := srv.Calls(wechattest.APIStableToken); got != 1+tt.wantStable {
				t.Errorf("after another call: stable_token calls = %d, want %d", got, 1+tt.wantStable)
			}
		})
	}
}

// TestTokenRefreshOnce: a token rejected twice is not refreshed twice.
func TestTokenRefreshOnce(t *testing.T) {
	srv, c := newPair(t)
	srv.FailNext(wechattest.APIPhoneNumber, 40001, 2)
	_, err := c.PhoneNumber(ctx(t), "alice", openidOf("alice"))
	if !wechat.IsInvalidToken(err) {
		t.Fatalf("err = %v, want 40001", err)
	}
	if got := srv.Calls(wechattest.APIPhoneNumber); got != 2 {
		t.Errorf("phone calls = %d, want 2", got)
	}
}

// TestTokenExpiryClientSide: the client replaces a token before it
// expires, without waiting for WeChat to refuse it.
func TestTokenExpiryClientSide(t *testing.T) {
	fc := newClock()
	srv, c := newPair(t, wechat.WithClock(fc.Now))
	srv.SetTokenTTL(time.Hour)
	tok, err := c.TokenSource().Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := tok.Expiry.Sub(fc.Now()); d != time.Hour {
		t.Errorf("expiry in %v, want 1h", d)
	}
	fc.Advance(58 * time.Minute) // still more than the minute of skew left
	if _, err := c.TokenSource().Token(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 1 {
		t.Errorf("stable_token calls = %d, want 1", got)
	}
	fc.Advance(90 * time.Second) // within the last minute
	if _, err := c.TokenSource().Token(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 2 {
		t.Errorf("stable_token calls = %d, want 2", got)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Run("bad secret", func(t *testing.T) {
		srv := wechattest.NewServer(appID, secret)
		defer srv.Close()
		c := wechat.NewClient(appID, "not-the-secret", wechat.WithBaseURL(srv.URL))
		_, err := c.PhoneNumber(ctx(t), "alice", openidOf("alice"))
		var ae *wechat.APIError
		if !errors.As(err, &ae) || ae.Code != 40125 || ae.API != wechat.APIStableToken {
			t.Errorf("err = %v, want stable_token 40125", err)
		}
		if srv.Calls(wechattest.APIPhoneNumber) != 0 {
			t.Errorf("phone called without a token")
		}
	})
	t.Run("busy once", func(t *testing.T) {
		srv, c := newPair(t)
		srv.FailNext(wechattest.APIStableToken, -1, 1)
		phone(t, c, "alice")
		if got := srv.Calls(wechattest.APIStableToken); got != 2 {
			t.Errorf("stable_token calls = %d, want 2", got)
		}
	})
	t.Run("no expires_in", func(t *testing.T) {
		srv, c := newPair(t)
		srv.RespondNext(wechattest.APIStableToken, 1, 200, "application/json", `{"access_token":"abcdefgh"}`)
		if _, err := c.TokenSource().Token(ctx(t)); !errors.Is(err, wechat.ErrBadResponse) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a failed fetch is not cached", func(t *testing.T) {
		srv, c := newPair(t)
		srv.RespondNext(wechattest.APIStableToken, 1, 200, "text/html", `<html>`)
		if _, err := c.TokenSource().Token(ctx(t)); !errors.Is(err, wechat.ErrBadResponse) {
			t.Errorf("err = %v", err)
		}
		if _, err := c.TokenSource().Token(ctx(t)); err != nil {
			t.Errorf("second fetch: %v", err)
		}
	})
}

// TestTokenWaiterTimeout: a caller waiting for a slow shared fetch gives
// up at its own deadline; the fetch is not tied to it.
func TestTokenWaiterTimeout(t *testing.T) {
	srv, c := newPair(t, wechat.WithTimeout(150*time.Millisecond))
	srv.SetDelay(wechattest.APIStableToken, 2*time.Second)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.TokenSource().Token(short); !errors.Is(err, wechat.ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if _, err := c.PhoneNumber(ctx(t), "alice", openidOf("alice")); !errors.Is(err, wechat.ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
}

func TestTokenString(t *testing.T) {
	tok := wechat.Token{AccessToken: "ACCESS-TOKEN-VALUE", Expiry: time.Unix(0, 0)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{tok, &tok} {
			if s := fmt.Sprintf(verb, v); contains(s, "ACCESS-TOKEN-VALUE") {
				t.Errorf("%s prints the token: %s", verb, s)
			}
		}
	}
}
