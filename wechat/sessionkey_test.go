package wechat_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func check(t *testing.T, c *wechat.Client, openid, key string) bool {
	t.Helper()
	ok, err := c.CheckSessionKey(ctx(t), openid, key)
	if err != nil {
		t.Fatalf("CheckSessionKey: %v", err)
	}
	return ok
}

func TestCheckSessionKey(t *testing.T) {
	srv, c := newPair(t)
	s := login(t, c, "alice")
	if !check(t, c, s.OpenID, s.SessionKey) {
		t.Errorf("the key of the latest login is not valid")
	}

	// WeChat replaces the key behind the server's back (data pre-fetch).
	fresh := srv.RotateSessionKey("alice")
	if check(t, c, s.OpenID, s.SessionKey) {
		t.Errorf("a rotated-out key is still valid")
	}
	if fresh == s.SessionKey || !check(t, c, s.OpenID, fresh) {
		t.Errorf("the rotated-in key is not valid")
	}
	// And a later login replaces it again.
	s2 := login(t, c, "alice:2")
	if check(t, c, s.OpenID, fresh) || !check(t, c, s2.OpenID, s2.SessionKey) {
		t.Errorf("after a new login")
	}
	if got := srv.Calls(wechattest.APICheckSession); got != 5 {
		t.Errorf("checksession calls = %d, want 5", got)
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 1 {
		t.Errorf("stable_token calls = %d, want 1 (shared with every API)", got)
	}
}

// TestCheckSessionKeyTokenRefresh: the refresh rule is PhoneNumber's.
func TestCheckSessionKeyTokenRefresh(t *testing.T) {
	srv, c := newPair(t)
	s := login(t, c, "alice")
	check(t, c, s.OpenID, s.SessionKey)
	srv.RevokeTokens()
	if !check(t, c, s.OpenID, s.SessionKey) {
		t.Errorf("not valid after a token refresh")
	}
	if got := srv.Calls(wechattest.APIStableToken); got != 2 {
		t.Errorf("stable_token calls = %d, want 2", got)
	}
	if got := srv.Calls(wechattest.APICheckSession); got != 3 {
		t.Errorf("checksession calls = %d, want 3", got)
	}

	// Refreshed once, not twice.
	srv.FailNext(wechattest.APICheckSession, 40001, 2)
	if _, err := c.CheckSessionKey(ctx(t), s.OpenID, s.SessionKey); !wechat.IsInvalidToken(err) {
		t.Errorf("err = %v, want 40001", err)
	}
	if got := srv.Calls(wechattest.APICheckSession); got != 5 {
		t.Errorf("checksession calls = %d, want 5", got)
	}
}

func TestCheckSessionKeyErrors(t *testing.T) {
	srv, c := newPair(t, wechat.WithTimeout(200*time.Millisecond))
	s := login(t, c, "alice")
	for _, tt := range []struct {
		name        string
		openid, key string
		setup       func()
		check       func(error) bool
	}{
		{"empty openid", "", s.SessionKey, nil, isErr(wechat.ErrInvalidInput)},
		{"long openid", string(make([]byte, 129)), s.SessionKey, nil, isErr(wechat.ErrInvalidInput)},
		{"empty key", s.OpenID, "", nil, isErr(wechat.ErrInvalidInput)},
		{"key not base64 of 16 bytes", s.OpenID, "AAAA", nil, isErr(wechat.ErrInvalidInput)},
		{"openid of nobody", openidOf("nobody"), s.SessionKey, nil, func(err error) bool { return apiCode(err) == 40003 }},
		{"invalid sig_method", s.OpenID, s.SessionKey, func() { srv.FailNext(wechattest.APICheckSession, 87008, 1) },
			func(err error) bool { return apiCode(err) == 87008 }},
		{"rate limited", s.OpenID, s.SessionKey, func() { srv.FailNext(wechattest.APICheckSession, 45011, 1) }, wechat.IsRateLimited},
		{"busy twice", s.OpenID, s.SessionKey, func() { srv.FailNext(wechattest.APICheckSession, -1, 2) }, wechat.IsSystemBusy},
		{"HTML", s.OpenID, s.SessionKey, func() {
			srv.RespondNext(wechattest.APICheckSession, 1, 200, "text/html", "<!doctype html>")
		}, isErr(wechat.ErrBadResponse)},
		{"502", s.OpenID, s.SessionKey, func() { srv.RespondNext(wechattest.APICheckSession, 1, 502, "", "") }, isErr(wechat.ErrBadResponse)},
		{"timeout", s.OpenID, s.SessionKey, func() { srv.SetDelay(wechattest.APICheckSession, 2*time.Second) }, isErr(wechat.ErrTimeout)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			valid, err := c.CheckSessionKey(ctx(t), tt.openid, tt.key)
			if valid || !tt.check(err) {
				t.Errorf("valid %v, err = %v (%T)", valid, err, err)
			}
		})
	}
	if got := srv.Calls(wechattest.APICheckSession); got != 8 {
		t.Errorf("checksession calls = %d, want 8 (bad input sends nothing; busy is retried)", got)
	}
}

func TestResetUserSessionKey(t *testing.T) {
	srv, c := newPair(t)
	s := login(t, c, "alice")
	ns, err := c.ResetUserSessionKey(ctx(t), s.OpenID, s.SessionKey)
	if err != nil {
		t.Fatal(err)
	}
	if ns.OpenID != s.OpenID || ns.SessionKey == s.SessionKey || ns.SessionKey != srv.SessionKey("alice") || ns.UnionID != "" {
		t.Errorf("reset gave %+v", ns)
	}
	if check(t, c, s.OpenID, s.SessionKey) || !check(t, c, ns.OpenID, ns.SessionKey) {
		t.Errorf("after a reset, the old key must be invalid and the new one valid")
	}
	// Only the current key can reset.
	if _, err := c.ResetUserSessionKey(ctx(t), s.OpenID, s.SessionKey); !wechat.IsInvalidSignature(err) {
		t.Errorf("reset with the old key: err = %v, want 87009", err)
	}

	srv.RevokeTokens()
	if _, err := c.ResetUserSessionKey(ctx(t), ns.OpenID, ns.SessionKey); err != nil {
		t.Errorf("after a token refresh: %v", err)
	}
	cur := srv.SessionKey("alice")
	for name, body := range map[string]string{
		"another openid":  `{"errcode":0,"openid":"oOTHER","session_key":"` + cur + `"}`,
		"no session_key":  `{"errcode":0,"openid":"` + s.OpenID + `"}`,
		"bad session_key": `{"errcode":0,"openid":"` + s.OpenID + `","session_key":"AAAA"}`,
		"truncated":       `{"errcode":0,"openid":"`,
	} {
		srv.RespondNext(wechattest.APIResetSessionKey, 1, 200, "application/json", body)
		if ns, err := c.ResetUserSessionKey(ctx(t), s.OpenID, cur); ns != nil || !errors.Is(err, wechat.ErrBadResponse) {
			t.Errorf("%s: %v, err = %v", name, ns, err)
		}
	}
	srv.FailNext(wechattest.APIResetSessionKey, 45011, 1)
	if _, err := c.ResetUserSessionKey(ctx(t), s.OpenID, cur); !wechat.IsRateLimited(err) {
		t.Errorf("45011: err = %v", err)
	}
	if _, err := c.ResetUserSessionKey(ctx(t), "", cur); !errors.Is(err, wechat.ErrInvalidInput) {
		t.Errorf("empty openid: err = %v", err)
	}
}

// TestUserStateWire pins what goes on the wire against a recorder that
// shares no code with the package or the fake: the signature over "" is
// the openssl-computed vector of TestUserStateSignature.
func TestUserStateWire(t *testing.T) {
	var mu sync.Mutex
	var got url.Values
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/stable_token":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "TOKEN-123456", "expires_in": 7200})
		case "/wxa/checksession":
			mu.Lock()
			got = r.URL.Query()
			mu.Unlock()
			if r.Method != http.MethodGet {
				http.Error(w, "method", http.StatusMethodNotAllowed)
				return
			}
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer rec.Close()
	c := wechat.NewClient(appID, secret, wechat.WithBaseURL(rec.URL))
	if ok, err := c.CheckSessionKey(ctx(t), "oUSER", "o0q0otL8aEzpcZL/FT9WsQ=="); !ok || err != nil {
		t.Fatalf("CheckSessionKey: %v, %v", ok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := url.Values{
		"access_token": {"TOKEN-123456"},
		"openid":       {"oUSER"},
		"signature":    {"46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"},
		"sig_method":   {"hmac_sha256"},
	}
	if got.Encode() != want.Encode() {
		t.Errorf("query = %s\nwant    %s", got.Encode(), want.Encode())
	}
}
