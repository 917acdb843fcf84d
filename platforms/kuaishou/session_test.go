package kuaishou_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
)

func TestCode2Session(t *testing.T) {
	srv, c := newPair(t)
	srv.SetUnionID("alice", "UNION-alice")
	s, err := c.Code2Session(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != srv.OpenID("alice") || s.UnionID != "UNION-alice" || s.SessionKey != srv.SessionKey("alice") {
		t.Errorf("session = %+v", *s)
	}
	s2, err := c.Code2Session(ctx(t), "alice:2")
	if err != nil || s2.OpenID != s.OpenID || s2.SessionKey == s.SessionKey {
		t.Errorf("second login = %v, %v", s2, err)
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
		{"used code", login("bob"), 100200100, kuaishou.IsInvalidCode},
		{"malformed code", login("bad-code"), 100200100, kuaishou.IsInvalidCode},
		{"wrong secret", func() error {
			_, err := kuaishou.NewClient(appID, "wrong-secret", kuaishou.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 100200101, kuaishou.IsInvalidCredentials},
		{"wrong app_id", func() error {
			_, err := kuaishou.NewClient("ks1", secret, kuaishou.WithBaseURL(srv.URL)).Code2Session(ctx(t), "carol")
			return err
		}(), 100200101, kuaishou.IsInvalidCredentials},
	} {
		var ae *kuaishou.APIError
		if apiCode(tt.err) != tt.code || !tt.is(tt.err) || !errors.As(tt.err, &ae) || ae.ErrorName == "" {
			t.Errorf("%s: %v, want result %d", tt.name, tt.err, tt.code)
		}
	}
	for _, code := range []int{100200100, 100200101, 0, 2, 12345} {
		srv.FailNext(code, 1)
		err := login(fmt.Sprint("u", code))
		if apiCode(err) != code || !strings.HasPrefix(err.Error(), "kuaishou: code2session: result ") {
			t.Errorf("FailNext(%d): %v", code, err)
		}
	}
}

func TestCode2SessionRetry(t *testing.T) {
	srv, _ := newPair(t)
	var mu sync.Mutex
	var seen []error
	flaky := &flakyTransport{}
	c := kuaishou.NewClient(appID, secret, kuaishou.WithBaseURL(srv.URL), kuaishou.WithHTTPClient(&http.Client{Transport: flaky}),
		kuaishou.WithObserver(func(api string, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, err)
		}))
	if _, err := c.Code2Session(ctx(t), "dave"); err != nil {
		t.Fatalf("one transport failure: %v", err)
	}
	srv.FailNext(100200100, 1)
	if _, err := c.Code2Session(ctx(t), "dave:2"); apiCode(err) != 100200100 {
		t.Fatalf("result 100200100 is not retried: %v", err)
	}
	if len(seen) != 3 || !errors.Is(seen[0], kuaishou.ErrUnavailable) || seen[1] != nil || srv.Calls() != 2 {
		t.Errorf("observer saw %v, calls %d", seen, srv.Calls())
	}
}

// flakyTransport fails its first round trip, then passes.
type flakyTransport struct {
	mu    sync.Mutex
	tries int
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.tries++
	n := f.tries
	f.mu.Unlock()
	if n == 1 {
		return nil, errors.New("connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestCode2SessionMalformed(t *testing.T) {
	srv, c := newPair(t)
	key := "AAAAAAAAAAAAAAAAAAAAAA=="
	for _, tt := range []struct {
		name, ctype, body string
		status            int
	}{
		{"HTML", "text/html", "<html>502</html>", 200},
		{"bad JSON", "application/json", `{"result":1,"open_id":`, 200},
		{"not an object", "application/json", `1`, 200},
		{"no result", "application/json", `{"open_id":"o","session_key":"` + key + `"}`, 200},
		{"result a string", "application/json", `{"result":"1"}`, 200},
		{"success without session key", "application/json", `{"result":1,"open_id":"o"}`, 200},
		{"success without open_id", "application/json", `{"result":1,"session_key":"` + key + `"}`, 200},
		{"HTTP 500", "application/json", `{"result":1}`, 500},
	} {
		srv.RespondNext(1, tt.status, tt.ctype, tt.body)
		if _, err := c.Code2Session(ctx(t), "erin"); !errors.Is(err, kuaishou.ErrBadResponse) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestCode2SessionInput(t *testing.T) {
	srv, c := newPair(t)
	for _, code := range []string{"", strings.Repeat("a", 1025), "a b", "a\tb", "\xff"} {
		if _, err := c.Code2Session(ctx(t), code); !errors.Is(err, kuaishou.ErrInvalidInput) {
			t.Errorf("%q: %v", code, err)
		}
	}
	if srv.Calls() != 0 {
		t.Errorf("%d calls made for bad codes", srv.Calls())
	}
	if kuaishou.CheckBaseURL(":") == nil || kuaishou.CheckBaseURL(kuaishou.DefaultBaseURL) != nil {
		t.Error("CheckBaseURL")
	}
	srv.SetDelay(time.Second)
	slow := kuaishou.NewClient(appID, secret, kuaishou.WithBaseURL(srv.URL), kuaishou.WithTimeout(100*time.Millisecond))
	if _, err := slow.Code2Session(ctx(t), "frank"); !errors.Is(err, kuaishou.ErrTimeout) {
		t.Errorf("slow: %v", err)
	}
	closed := kuaishoutest.NewServer(appID, secret)
	closed.Close()
	if _, err := kuaishou.NewClient(appID, secret, kuaishou.WithBaseURL(closed.URL)).Code2Session(ctx(t), "frank"); !errors.Is(err, kuaishou.ErrUnavailable) {
		t.Errorf("refused: %v", err)
	}
}
