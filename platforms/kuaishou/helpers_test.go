package kuaishou_test

import (
	"context"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
)

const (
	appID  = "ks707065143182458884"
	secret = "KSSECRETa1b2c3d4e5f6"
)

func newPair(t *testing.T, opts ...kuaishou.Option) (*kuaishoutest.Server, *kuaishou.Client) {
	t.Helper()
	srv := kuaishoutest.NewServer(appID, secret)
	t.Cleanup(srv.Close)
	return srv, kuaishou.NewClient(appID, secret, append([]kuaishou.Option{kuaishou.WithBaseURL(srv.URL)}, opts...)...)
}

func ctx(t *testing.T) context.Context { return platformtest.Ctx(t) }

func apiCode(err error) int { return platformtest.Code(err) }
