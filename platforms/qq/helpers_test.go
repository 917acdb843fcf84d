package qq_test

import (
	"context"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
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

func ctx(t *testing.T) context.Context { return platformtest.Ctx(t) }

func apiCode(err error) int { return platformtest.Code(err) }
