package douyin_test

import (
	"context"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
)

const (
	appID  = "tt0123456789abcdef"
	secret = "DYSECRETa1b2c3d4e5f6"
)

func newPair(t *testing.T, opts ...douyin.Option) (*douyintest.Server, *douyin.Client) {
	t.Helper()
	srv := douyintest.NewServer(appID, secret)
	t.Cleanup(srv.Close)
	return srv, douyin.NewClient(appID, secret, append([]douyin.Option{douyin.WithBaseURL(srv.URL)}, opts...)...)
}

func ctx(t *testing.T) context.Context { return platformtest.Ctx(t) }

func apiCode(err error) int { return platformtest.Code(err) }
