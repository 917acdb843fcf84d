package qq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
)

const (
	appID  = "1112223334"
	secret = "QQSECRETa1b2c3d4e5f6"
)

func newPair(t *testing.T, opts ...qq.Option) (*qqtest.Server, *qq.Client) {
	t.Helper()
	srv := qqtest.NewServer(appID, secret)
	t.Cleanup(srv.Close)
	return srv, qq.NewClient(appID, secret, append([]qq.Option{qq.WithBaseURL(srv.URL)}, opts...)...)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func apiCode(err error) int {
	var ae *qq.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}
