package wechat_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

const (
	appID  = "wx0123456789abcdef"
	secret = "SECRETa1b2c3d4e5f6a7b8c9d0e1f2a3b4"
)

// newPair starts a fake and a client pointed at it.
func newPair(t *testing.T, opts ...wechat.Option) (*wechattest.Server, *wechat.Client) {
	t.Helper()
	srv := wechattest.NewServer(appID, secret)
	t.Cleanup(srv.Close)
	c := wechat.NewClient(appID, secret, append([]wechat.Option{wechat.WithBaseURL(srv.URL)}, opts...)...)
	return srv, c
}

// openidOf is the openid of the user a fake's code names, as the caller
// of PhoneNumber passes it; a malformed code gets an openid of nobody.
func openidOf(code string) string {
	user, ok := wechattest.UserOfCode(code)
	if !ok {
		user = "nobody"
	}
	return wechattest.New(appID, secret).OpenID(user)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func login(t *testing.T, c *wechat.Client, code string) *wechat.Session {
	t.Helper()
	s, err := c.Code2Session(ctx(t), code)
	if err != nil {
		t.Fatalf("Code2Session(%q): %v", code, err)
	}
	return s
}

func apiCode(err error) int {
	var ae *wechat.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// flakyTransport fails the first n round trips with err, then passes to
// http.DefaultTransport.
type flakyTransport struct {
	n     int32
	err   error
	tries atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.tries.Add(1) <= f.n {
		return nil, f.err
	}
	return http.DefaultTransport.RoundTrip(r)
}
