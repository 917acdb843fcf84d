package baidu_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

const (
	appKey = "WPGsbTTGEQ2VRnNcEIjyo5nT1wGxc3PZ"
	secret = "SKzkDSFBfXvHtmtMAsNrQ8sFN9DNLFNZE4"
)

// newPair starts a fake and a client pointed at it.
func newPair(t *testing.T, opts ...baidu.Option) (*baidutest.Server, *baidu.Client) {
	t.Helper()
	srv := baidutest.NewServer(appKey, secret)
	t.Cleanup(srv.Close)
	c := baidu.NewClient(appKey, secret, append([]baidu.Option{baidu.WithBaseURL(srv.URL)}, opts...)...)
	return srv, c
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func login(t *testing.T, c *baidu.Client, code string) *baidu.Session {
	t.Helper()
	s, err := c.Code2Session(ctx(t), code)
	if err != nil {
		t.Fatalf("Code2Session(%q): %v", code, err)
	}
	return s
}

func apiCode(err error) string {
	var ae *baidu.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// renderings returns every way an error is likely to be printed, through
// its whole Unwrap tree.
func renderings(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, renderings(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, renderings(e)...)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		out = append(out, ue.URL)
	}
	return out
}

func leaks(t *testing.T, what string, rendered []string, secrets map[string]string) {
	t.Helper()
	for _, r := range rendered {
		for name, s := range secrets {
			if s != "" && strings.Contains(r, s) {
				t.Errorf("%s: %s leaks in %q", what, name, r)
			}
		}
	}
}
