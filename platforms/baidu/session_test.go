package baidu_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

func TestCode2Session(t *testing.T) {
	srv, c := newPair(t)
	s1 := login(t, c, "alice")
	if s1.OpenID != srv.OpenID("alice") || s1.SessionKey != srv.SessionKey("alice") || s1.UnionID != "" {
		t.Errorf("session = %+v", *s1)
	}
	s2 := login(t, c, "alice:2")
	if s2.OpenID != s1.OpenID || s2.SessionKey == s1.SessionKey {
		t.Errorf("second login: same openid and a new session_key expected")
	}
	if login(t, c, "bob").OpenID == s1.OpenID {
		t.Errorf("bob has alice's openid")
	}
	if c.AppKey() != appKey {
		t.Errorf("AppKey() = %q", c.AppKey())
	}
}

func TestCode2SessionErrors(t *testing.T) {
	srv, c := newPair(t)
	login(t, c, "used")
	tests := []struct {
		name    string
		code    string
		client  *baidu.Client
		setup   func()
		check   func(error) bool
		apiCode string
	}{
		{name: "used code", code: "used", check: baidu.IsInvalidCode, apiCode: "invalid_grant"},
		{name: "bad code", code: "bad1", check: baidu.IsInvalidCode, apiCode: "invalid_grant"},
		{name: "wrong secret", code: "x1", client: baidu.NewClient(appKey, "wrong-secret", baidu.WithBaseURL(srv.URL)),
			check: baidu.IsInvalidCredentials, apiCode: "invalid_client"},
		{name: "wrong app key", code: "x2", client: baidu.NewClient("other", secret, baidu.WithBaseURL(srv.URL)),
			check: baidu.IsInvalidCredentials, apiCode: "invalid_client"},
		{name: "empty", code: "", check: func(err error) bool { return errors.Is(err, baidu.ErrInvalidInput) }},
		{name: "long", code: strings.Repeat("a", 1025), check: func(err error) bool { return errors.Is(err, baidu.ErrInvalidInput) }},
		{name: "injected", code: "x3", setup: func() { srv.FailNext(baidutest.APICode2Session, "invalid_grant", 1) }, check: baidu.IsInvalidCode},
		{name: "html", code: "x4", setup: func() { srv.RespondNext(baidutest.APICode2Session, 1, 502, "text/html", "<html>") },
			check: func(err error) bool { return errors.Is(err, baidu.ErrBadResponse) }},
		{name: "500 without error object", code: "x5", setup: func() { srv.RespondNext(baidutest.APICode2Session, 1, 500, "application/json", `{"openid":"o"}`) },
			check: func(err error) bool { return errors.Is(err, baidu.ErrBadResponse) }},
		{name: "truncated", code: "x6", setup: func() { srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"openid":"o",`) },
			check: func(err error) bool { return errors.Is(err, baidu.ErrBadResponse) }},
		{name: "16-byte key", code: "x7", setup: func() {
			srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"openid":"o","session_key":"AAECAwQFBgcICQoLDA0ODw=="}`)
		}, check: func(err error) bool { return errors.Is(err, baidu.ErrBadResponse) }},
		{name: "no openid", code: "x8", setup: func() {
			srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"session_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"}`)
		}, check: func(err error) bool { return errors.Is(err, baidu.ErrBadResponse) }},
		{name: "bad base", code: "x9", client: baidu.NewClient(appKey, secret, baidu.WithBaseURL("ftp://x")),
			check: func(err error) bool { return errors.Is(err, baidu.ErrInvalidInput) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			cl := c
			if tt.client != nil {
				cl = tt.client
			}
			s, err := cl.Code2Session(ctx(t), tt.code)
			if err == nil || s != nil || !tt.check(err) {
				t.Fatalf("got %v, %v", s, err)
			}
			if tt.apiCode != "" && apiCode(err) != tt.apiCode {
				t.Errorf("code %q, want %q", apiCode(err), tt.apiCode)
			}
		})
	}
	// A failed login did not use up its code.
	login(t, c, "x3")
}

func TestCode2SessionTimeout(t *testing.T) {
	srv, c := newPair(t, baidu.WithTimeout(100*time.Millisecond))
	srv.SetDelay(baidutest.APICode2Session, 2*time.Second)
	start := time.Now()
	_, err := c.Code2Session(ctx(t), "alice")
	if !errors.Is(err, baidu.ErrTimeout) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

type failOnce struct{ n atomic.Int32 }

func (f *failOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(1) == 1 {
		return nil, errors.New("connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestCode2SessionRetryAndObserver(t *testing.T) {
	var calls atomic.Int32
	srv, c := newPair(t,
		baidu.WithHTTPClient(&http.Client{Transport: &failOnce{}}),
		baidu.WithObserver(func(api string, _ time.Duration, _ error) {
			if api == baidu.APICode2Session {
				calls.Add(1)
			}
		}))
	login(t, c, "alice")
	if calls.Load() != 2 || srv.Calls(baidutest.APICode2Session) != 1 {
		t.Errorf("observer saw %d attempts, fake %d calls", calls.Load(), srv.Calls(baidutest.APICode2Session))
	}
}

// The observer sees each attempt's real outcome: Baidu's error answers
// (an error object at HTTP 200 or 400, an unusable body) are errors
// there too, as they are to the caller, and are not retried.
func TestCode2SessionObserverSeesErrors(t *testing.T) {
	var mu sync.Mutex
	var seen []error
	srv, c := newPair(t, baidu.WithObserver(func(_ string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, err)
	}))
	login(t, c, "alice")
	srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"error":"invalid_grant","error_description":"expired"}`)
	if _, err := c.Code2Session(ctx(t), "x1"); !baidu.IsInvalidCode(err) {
		t.Fatalf("an error object at 200: %v", err)
	}
	srv.FailNext(baidutest.APICode2Session, "invalid_client", 1)
	if _, err := c.Code2Session(ctx(t), "x2"); !baidu.IsInvalidCredentials(err) {
		t.Fatalf("an error object at 400: %v", err)
	}
	srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"session_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"}`)
	if _, err := c.Code2Session(ctx(t), "x3"); !errors.Is(err, baidu.ErrBadResponse) {
		t.Fatalf("an answer without openid: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 || seen[0] != nil || !baidu.IsInvalidCode(seen[1]) ||
		!baidu.IsInvalidCredentials(seen[2]) || !errors.Is(seen[3], baidu.ErrBadResponse) {
		t.Errorf("observer saw %v, want nil, invalid_grant, invalid_client, a bad response", seen)
	}
}

func TestCheckBaseURL(t *testing.T) {
	for raw, ok := range map[string]bool{baidu.DefaultBaseURL: true, "http://127.0.0.1:1/": true, "ftp://x": false, "/x": false, "": false} {
		if err := baidu.CheckBaseURL(raw); (err == nil) != ok {
			t.Errorf("CheckBaseURL(%q) = %v", raw, err)
		}
	}
}
