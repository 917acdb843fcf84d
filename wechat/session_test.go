package wechat_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestCode2Session(t *testing.T) {
	srv, c := newPair(t)
	s1 := login(t, c, "alice")
	if s1.OpenID != srv.OpenID("alice") || len(s1.OpenID) != 28 || s1.OpenID[0] != 'o' {
		t.Errorf("openid = %q, want fake's %q", s1.OpenID, srv.OpenID("alice"))
	}
	if s1.SessionKey != srv.SessionKey("alice") || s1.UnionID != "" {
		t.Errorf("session = %+v", *s1)
	}
	s2 := login(t, c, "alice:2")
	if s2.OpenID != s1.OpenID || s2.SessionKey == s1.SessionKey {
		t.Errorf("second login: same openid and a new session_key expected")
	}
	if got := login(t, c, "bob").OpenID; got == s1.OpenID {
		t.Errorf("bob has alice's openid")
	}
	if c.AppID() != appID {
		t.Errorf("AppID() = %q", c.AppID())
	}
}

func TestCode2SessionUnionID(t *testing.T) {
	srv, c := newPair(t)
	srv.SetUnionID("carol", "oUnion-carol")
	if got := login(t, c, "carol").UnionID; got != "oUnion-carol" {
		t.Errorf("unionid = %q", got)
	}
}

// TestCode2SessionPlainText: WeChat answers with Content-Type: text/plain.
func TestCode2SessionPlainText(t *testing.T) {
	srv, c := newPair(t)
	srv.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain",
		`{"errcode":0,"session_key":"AAECAwQFBgcICQoLDA0ODw==","openid":"oABC"}`)
	s := login(t, c, "x")
	if s.OpenID != "oABC" {
		t.Errorf("openid = %q", s.OpenID)
	}
}

func TestCode2SessionErrors(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		client    func(url string) *wechat.Client // nil: the right credentials
		setup     func(*testing.T, *wechattest.Server, *wechat.Client)
		check     func(error) bool
		wantCode  int
		wantCalls int
	}{
		{name: "invalid code", code: "bad-code", check: wechat.IsInvalidCode, wantCode: 40029, wantCalls: 1},
		{name: "code with space", code: "al ice", check: wechat.IsInvalidCode, wantCode: 40029, wantCalls: 1},
		{name: "code used", code: "alice",
			setup: func(t *testing.T, _ *wechattest.Server, c *wechat.Client) { login(t, c, "alice") },
			check: wechat.IsInvalidCode, wantCode: 40163, wantCalls: 2},
		{name: "missing code", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.FailNext(wechattest.APICode2Session, 41008, 1)
			},
			check: wechat.IsInvalidCode, wantCode: 41008, wantCalls: 1},
		{name: "high risk user", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.FailNext(wechattest.APICode2Session, 40226, 1)
			},
			check: wechat.IsUserBlocked, wantCode: 40226, wantCalls: 1},
		{name: "rate limited", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.FailNext(wechattest.APICode2Session, 45011, 1)
			},
			check: wechat.IsRateLimited, wantCode: 45011, wantCalls: 1},
		{name: "bad appid", code: "alice",
			client: func(u string) *wechat.Client {
				return wechat.NewClient("wxother", secret, wechat.WithBaseURL(u))
			},
			check: wechat.IsInvalidCredentials, wantCode: 40013, wantCalls: 1},
		{name: "bad secret", code: "alice",
			client: func(u string) *wechat.Client {
				return wechat.NewClient(appID, "wrong-secret-0000", wechat.WithBaseURL(u))
			},
			check: wechat.IsInvalidCredentials, wantCode: 40125, wantCalls: 1},
		{name: "busy twice", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.FailNext(wechattest.APICode2Session, -1, 2)
			},
			check: wechat.IsSystemBusy, wantCode: -1, wantCalls: 2},
		{name: "unknown errcode", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.FailNext(wechattest.APICode2Session, 61234, 1)
			},
			check: func(err error) bool {
				return !wechat.IsInvalidCode(err) && !wechat.IsSystemBusy(err) && !wechat.IsInvalidToken(err) &&
					!wechat.IsRateLimited(err) && !wechat.IsUserBlocked(err)
			},
			wantCode: 61234, wantCalls: 1},
		{name: "HTML", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/html", "<html><body>502 Bad Gateway</body></html>")
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "truncated JSON", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"session_key":"AAECAwQFBgcICQoLDA0ODw==","open`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "HTTP 502 with JSON", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 502, "application/json", `{"errcode":0}`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "JSON null", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `null`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "empty body", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", ``)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "success without openid", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"session_key":"AAECAwQFBgcICQoLDA0ODw=="}`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "success with a bad session_key", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"session_key":"short","openid":"oX"}`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "errcode as string", code: "alice",
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"errcode":"40029"}`)
			},
			check: isErr(wechat.ErrBadResponse), wantCalls: 1},
		{name: "empty code", code: "", check: isErr(wechat.ErrInvalidInput), wantCalls: 0},
		{name: "code too long", code: strings.Repeat("a", 2000), check: isErr(wechat.ErrInvalidInput), wantCalls: 0},
		{name: "timeout is not retried", code: "alice",
			client: func(u string) *wechat.Client {
				return wechat.NewClient(appID, secret, wechat.WithBaseURL(u), wechat.WithTimeout(100*time.Millisecond))
			},
			setup: func(_ *testing.T, s *wechattest.Server, _ *wechat.Client) {
				s.SetDelay(wechattest.APICode2Session, 2*time.Second)
			},
			check: func(err error) bool {
				return errors.Is(err, wechat.ErrTimeout) && errors.Is(err, context.DeadlineExceeded)
			},
			wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newPair(t)
			if tt.client != nil {
				c = tt.client(srv.URL)
			}
			if tt.setup != nil {
				tt.setup(t, srv, c)
			}
			s, err := c.Code2Session(ctx(t), tt.code)
			if err == nil || s != nil {
				t.Fatalf("Code2Session = %v, %v; want an error", s, err)
			}
			if !tt.check(err) {
				t.Errorf("error %q (%T) fails the check", err, err)
			}
			if got := apiCode(err); got != tt.wantCode {
				t.Errorf("errcode = %d, want %d (err %q)", got, tt.wantCode, err)
			}
			if got := srv.Calls(wechattest.APICode2Session); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			var ae *wechat.APIError
			if errors.As(err, &ae) && (ae.API != wechat.APICode2Session || !strings.Contains(err.Error(), "jscode2session")) {
				t.Errorf("APIError names API %q: %q", ae.API, err)
			}
		})
	}
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// TestCode2SessionBusyOnce: -1 is retried once, and the retry succeeds.
func TestCode2SessionBusyOnce(t *testing.T) {
	srv, c := newPair(t)
	srv.FailNext(wechattest.APICode2Session, -1, 1)
	s := login(t, c, "alice")
	if s.OpenID != srv.OpenID("alice") {
		t.Errorf("openid = %q", s.OpenID)
	}
	if got := srv.Calls(wechattest.APICode2Session); got != 2 {
		t.Errorf("calls = %d, want 2", got)
	}
}

func TestTransportRetry(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	for _, tc := range []struct {
		failures  int32
		wantErr   bool
		wantTries int32
	}{{1, false, 2}, {2, true, 2}} {
		ft := &flakyTransport{n: tc.failures, err: syscall.ECONNRESET}
		c := wechat.NewClient(appID, secret, wechat.WithBaseURL(srv.URL), wechat.WithHTTPClient(&http.Client{Transport: ft}))
		_, err := c.Code2Session(ctx(t), "u"+string(rune('0'+tc.failures)))
		if (err != nil) != tc.wantErr {
			t.Errorf("%d failures: err = %v", tc.failures, err)
		}
		if tc.wantErr && (!errors.Is(err, wechat.ErrUnavailable) || !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("err = %v, want ErrUnavailable wrapping ECONNRESET", err)
		}
		if got := ft.tries.Load(); got != tc.wantTries {
			t.Errorf("%d failures: %d tries, want %d", tc.failures, got, tc.wantTries)
		}
	}
}

func TestUnavailable(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	url := srv.URL
	srv.Close() // nothing listens there now: connection refused
	c := wechat.NewClient(appID, secret, wechat.WithBaseURL(url))
	_, err := c.Code2Session(ctx(t), "alice")
	if !errors.Is(err, wechat.ErrUnavailable) || errors.Is(err, wechat.ErrTimeout) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want it to wrap ECONNREFUSED", err)
	}
}

func TestCallerContext(t *testing.T) {
	srv, c := newPair(t)
	srv.SetDelay(wechattest.APICode2Session, 2*time.Second)

	cctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := c.Code2Session(cctx, "alice")
	if !errors.Is(err, context.Canceled) || errors.Is(err, wechat.ErrTimeout) || errors.Is(err, wechat.ErrUnavailable) {
		t.Errorf("canceled: err = %v", err)
	}

	dctx, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, err = c.Code2Session(dctx, "bob")
	if !errors.Is(err, wechat.ErrTimeout) {
		t.Errorf("caller deadline: err = %v, want ErrTimeout", err)
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, u := range []string{"::", "ftp://x", "/relative", "http://"} {
		c := wechat.NewClient(appID, secret, wechat.WithBaseURL(u))
		if _, err := c.Code2Session(ctx(t), "alice"); !errors.Is(err, wechat.ErrInvalidInput) {
			t.Errorf("base %q: err = %v", u, err)
		}
	}
}

func TestObserver(t *testing.T) {
	type obs struct {
		api string
		err error
	}
	ch := make(chan obs, 10)
	srv, c := newPair(t, wechat.WithObserver(func(api string, _ time.Duration, err error) { ch <- obs{api, err} }))
	srv.FailNext(wechattest.APICode2Session, -1, 1)
	login(t, c, "alice")
	close(ch)
	var got []obs
	for o := range ch {
		got = append(got, o)
	}
	if len(got) != 2 || got[0].api != wechat.APICode2Session || !wechat.IsSystemBusy(got[0].err) || got[1].err != nil {
		t.Errorf("observed %v", got)
	}
}
