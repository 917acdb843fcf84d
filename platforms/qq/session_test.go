package qq_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
)

func TestCode2Session(t *testing.T) {
	srv, c := newPair(t)
	srv.SetUnionID("alice", "UNION-alice")
	s, err := c.Code2Session(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != srv.OpenID("alice") || s.UnionID != "UNION-alice" || s.SessionKey != srv.SessionKey("alice") || len(s.OpenID) != 32 {
		t.Errorf("session = %+v", *s)
	}
	s2, err := c.Code2Session(ctx(t), "alice:2")
	if err != nil || s2.OpenID != s.OpenID || s2.SessionKey == s.SessionKey {
		t.Errorf("second login = %v, %v: want the same openid, a new key", s2, err)
	}
	if c.AppID() != appID {
		t.Error("AppID")
	}
}

func TestCode2SessionRefusals(t *testing.T) {
	srv, c := newPair(t)
	login := func(code string) error { _, err := c.Code2Session(ctx(t), code); return err }
	if err := login("bob"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		err  error
		code int
		is   func(error) bool
	}{
		{"used code", login("bob"), 40029, qq.IsInvalidCode},
		{"malformed code", login("bad-code"), 40029, qq.IsInvalidCode},
		{"wrong secret", func() error {
			_, err := qq.NewClient(appID, "wrong-secret", qq.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 40125, qq.IsInvalidCredentials},
		{"wrong appid", func() error {
			_, err := qq.NewClient("999", secret, qq.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 40013, qq.IsInvalidCredentials},
	} {
		if apiCode(tt.err) != tt.code || !tt.is(tt.err) {
			t.Errorf("%s: %v, want errcode %d", tt.name, tt.err, tt.code)
		}
	}
	for _, code := range []int{-1, 40029, 45011, 40013, 40125, 41008, 12345} {
		n := 1
		if code == -1 {
			n = 2 // retried once
		}
		srv.FailNext(code, n)
		err := login(fmt.Sprint("u", code))
		var ae *qq.APIError
		if !errors.As(err, &ae) || ae.Code != code || ae.API != qq.APICode2Session || !strings.HasPrefix(err.Error(), "qq: jscode2session: errcode ") {
			t.Errorf("FailNext(%d): %v", code, err)
		}
	}
	if !qq.IsRateLimited(&qq.APIError{Code: 45011}) || !qq.IsSystemBusy(&qq.APIError{Code: -1}) || qq.IsInvalidCode(errors.New("x")) {
		t.Error("predicates")
	}
}

func TestCode2SessionRetry(t *testing.T) {
	srv, c := newPair(t)
	var mu sync.Mutex
	var seen []error
	c = qq.NewClient(appID, secret, qq.WithBaseURL(srv.URL), qq.WithObserver(func(api string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, err)
	}))
	srv.FailNext(-1, 1)
	if _, err := c.Code2Session(ctx(t), "dave"); err != nil {
		t.Fatalf("busy once: %v", err)
	}
	srv.FailNext(40029, 1)
	if _, err := c.Code2Session(ctx(t), "dave:2"); apiCode(err) != 40029 {
		t.Fatalf("40029 is not retried: %v", err)
	}
	if len(seen) != 3 || !qq.IsSystemBusy(seen[0]) || seen[1] != nil {
		t.Errorf("observer saw %v", seen)
	}
	if srv.Calls() != 3 {
		t.Errorf("calls = %d", srv.Calls())
	}
}

func TestCode2SessionMalformed(t *testing.T) {
	srv, c := newPair(t)
	for _, tt := range []struct {
		name, ctype, body string
		status            int
	}{
		{"HTML", "text/html", "<html>502</html>", 200},
		{"bad JSON", "text/plain", `{"openid":`, 200},
		{"not an object", "text/plain", `["x"]`, 200},
		{"empty", "text/plain", ``, 200},
		{"no session key", "text/plain", `{"openid":"o1"}`, 200},
		{"short session key", "text/plain", `{"openid":"o1","session_key":"AAAA"}`, 200},
		{"no openid", "text/plain", `{"session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 200},
		{"errcode a string", "text/plain", `{"errcode":"40029"}`, 200},
		{"HTTP 500", "text/plain", `{}`, 500},
		{"HTTP 404", "text/html", `<html>`, 404},
	} {
		srv.RespondNext(1, tt.status, tt.ctype, tt.body)
		if _, err := c.Code2Session(ctx(t), "erin"); !errors.Is(err, qq.ErrBadResponse) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestCode2SessionInput(t *testing.T) {
	srv, c := newPair(t)
	for _, code := range []string{"", strings.Repeat("a", 1025), "a b", "a\nb", "a\x00b", "\xff"} {
		if _, err := c.Code2Session(ctx(t), code); !errors.Is(err, qq.ErrInvalidInput) {
			t.Errorf("%q: %v", code, err)
		}
	}
	if srv.Calls() != 0 {
		t.Errorf("%d calls made for bad codes", srv.Calls())
	}
	for _, u := range []string{"", "api.q.qq.com", "ftp://x", "http://"} {
		if qq.CheckBaseURL(u) == nil {
			t.Errorf("CheckBaseURL(%q) accepted", u)
		}
		if _, err := qq.NewClient(appID, secret, qq.WithBaseURL(u)).Code2Session(ctx(t), "x"); !errors.Is(err, qq.ErrInvalidInput) {
			t.Errorf("base %q: %v", u, err)
		}
	}
	if qq.CheckBaseURL(qq.DefaultBaseURL) != nil {
		t.Error("default base URL refused")
	}
}

func TestCode2SessionTransport(t *testing.T) {
	srv, c := newPair(t, qq.WithTimeout(100*time.Millisecond))
	srv.SetDelay(time.Second)
	if _, err := c.Code2Session(ctx(t), "frank"); !errors.Is(err, qq.ErrTimeout) {
		t.Errorf("slow: %v", err)
	}
	srv.SetDelay(0)
	closed := qqtest.NewServer(appID, secret)
	closed.Close()
	if _, err := qq.NewClient(appID, secret, qq.WithBaseURL(closed.URL)).Code2Session(ctx(t), "frank"); !errors.Is(err, qq.ErrUnavailable) {
		t.Errorf("refused: %v", err)
	}
	redirect := &http.Client{Transport: http.DefaultTransport}
	if _, err := qq.NewClient(appID, secret, qq.WithBaseURL(srv.URL), qq.WithHTTPClient(redirect)).Code2Session(ctx(t), "frank:2"); err != nil {
		t.Errorf("custom HTTP client: %v", err)
	}
}
