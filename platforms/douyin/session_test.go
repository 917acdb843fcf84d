package douyin_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
)

func TestCode2Session(t *testing.T) {
	srv, c := newPair(t)
	srv.SetUnionID("alice", "UNION-alice")
	s, err := c.Code2Session(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != srv.OpenID("alice") || s.UnionID != "UNION-alice" || s.SessionKey != srv.SessionKey("alice") || s.AnonymousOpenID != "" {
		t.Errorf("session = %+v", *s)
	}
	s2, err := c.Code2SessionWithAnonymous(ctx(t), "alice:2", "anon1")
	if err != nil || s2.OpenID != s.OpenID || s2.SessionKey == s.SessionKey || s2.AnonymousOpenID != srv.AnonymousOpenID("anon1") {
		t.Errorf("second login = %v, %v", s2, err)
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
	_, anonErr := c.Code2SessionWithAnonymous(ctx(t), "bob:3", "bad-anon")
	for _, tt := range []struct {
		name string
		err  error
		code int
		is   func(error) bool
	}{
		{"used code", login("bob"), 40018, douyin.IsInvalidCode},
		{"malformed code", login("bad-code"), 40018, douyin.IsInvalidCode},
		{"bad anonymous code", anonErr, 40019, douyin.IsInvalidCode},
		{"wrong secret", func() error {
			_, err := douyin.NewClient(appID, "wrong-secret", douyin.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 40017, douyin.IsInvalidCredentials},
		{"wrong appid", func() error {
			_, err := douyin.NewClient("tt999", secret, douyin.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 40015, douyin.IsInvalidCredentials},
	} {
		if apiCode(tt.err) != tt.code || !tt.is(tt.err) {
			t.Errorf("%s: %v, want err_no %d", tt.name, tt.err, tt.code)
		}
	}
	for _, code := range []int{-1, 40015, 40017, 40018, 40019, 12345} {
		n := 1
		if code == -1 {
			n = 2 // retried once
		}
		srv.FailNext(code, n)
		err := login(fmt.Sprint("u", code))
		var ae *douyin.APIError
		if !errors.As(err, &ae) || ae.Code != code || !strings.HasPrefix(err.Error(), "douyin: jscode2session: err_no ") {
			t.Errorf("FailNext(%d): %v", code, err)
		}
	}
	if !douyin.IsSystemBusy(&douyin.APIError{Code: -1}) || douyin.IsInvalidCode(errors.New("x")) {
		t.Error("predicates")
	}
}

func TestCode2SessionRetry(t *testing.T) {
	srv, _ := newPair(t)
	var mu sync.Mutex
	var seen []error
	c := douyin.NewClient(appID, secret, douyin.WithBaseURL(srv.URL), douyin.WithObserver(func(api string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, err)
	}))
	srv.FailNext(-1, 1)
	if _, err := c.Code2Session(ctx(t), "dave"); err != nil {
		t.Fatalf("busy once: %v", err)
	}
	srv.FailNext(40018, 1)
	if _, err := c.Code2Session(ctx(t), "dave:2"); apiCode(err) != 40018 {
		t.Fatalf("40018 is not retried: %v", err)
	}
	if len(seen) != 3 || !douyin.IsSystemBusy(seen[0]) || seen[1] != nil || srv.Calls() != 3 {
		t.Errorf("observer saw %v, calls %d", seen, srv.Calls())
	}
}

func TestCode2SessionMalformed(t *testing.T) {
	srv, c := newPair(t)
	key := "AAAAAAAAAAAAAAAAAAAAAA=="
	for _, tt := range []struct {
		name, ctype, body string
		status            int
	}{
		{"HTML", "text/html", "<html>502</html>", 200},
		{"bad JSON", "application/json", `{"err_no":0,"data":`, 200},
		{"not an object", "application/json", `[0]`, 200},
		{"no err_no", "application/json", `{"data":{"openid":"o","session_key":"` + key + `"}}`, 200},
		{"err_no a string", "application/json", `{"err_no":"0"}`, 200},
		{"success without data", "application/json", `{"err_no":0,"err_tips":"success"}`, 200},
		{"success without session key", "application/json", `{"err_no":0,"data":{"openid":"o"}}`, 200},
		{"success without openid", "application/json", `{"err_no":0,"data":{"session_key":"` + key + `"}}`, 200},
		{"data a string", "application/json", `{"err_no":0,"data":"x"}`, 200},
		{"HTTP 502", "text/html", `<html>`, 502},
	} {
		srv.RespondNext(1, tt.status, tt.ctype, tt.body)
		if _, err := c.Code2Session(ctx(t), "erin"); !errors.Is(err, douyin.ErrBadResponse) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestCode2SessionInput(t *testing.T) {
	srv, c := newPair(t)
	for _, code := range []string{"", strings.Repeat("a", 1025), "a b", "a\nb", "\xff"} {
		if _, err := c.Code2Session(ctx(t), code); !errors.Is(err, douyin.ErrInvalidInput) {
			t.Errorf("%q: %v", code, err)
		}
		if code != "" {
			if _, err := c.Code2SessionWithAnonymous(ctx(t), "frank", code); !errors.Is(err, douyin.ErrInvalidInput) {
				t.Errorf("anonymous %q: %v", code, err)
			}
		}
	}
	if srv.Calls() != 0 {
		t.Errorf("%d calls made for bad codes", srv.Calls())
	}
	if douyin.CheckBaseURL("developer.toutiao.com") == nil || douyin.CheckBaseURL(douyin.DefaultBaseURL) != nil {
		t.Error("CheckBaseURL")
	}
	srv.SetDelay(time.Second)
	slow := douyin.NewClient(appID, secret, douyin.WithBaseURL(srv.URL), douyin.WithTimeout(100*time.Millisecond))
	if _, err := slow.Code2Session(ctx(t), "frank"); !errors.Is(err, douyin.ErrTimeout) {
		t.Errorf("slow: %v", err)
	}
	closed := douyintest.NewServer(appID, secret)
	closed.Close()
	if _, err := douyin.NewClient(appID, secret, douyin.WithBaseURL(closed.URL)).Code2Session(ctx(t), "frank"); !errors.Is(err, douyin.ErrUnavailable) {
		t.Errorf("refused: %v", err)
	}
}
