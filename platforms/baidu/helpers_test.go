package baidu_test

import (
	"context"
	"errors"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
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

func ctx(t *testing.T) context.Context { return platformtest.Ctx(t) }

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
