package platform_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// newPlatform makes the named platform's client against a fake.
func newPlatform(t *testing.T, name, appID, base string) platform.Platform {
	t.Helper()
	mi, err := caddy.GetModule(platform.Namespace + "." + name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mi.New().(platform.Module).New(platform.App{AppID: appID, AppSecret: "secret", APIBase: base, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoginAndClassify: each platform over its fake logs a user in, a
// refused code is InvalidCode with the platform's code, and the errors of
// its client map to the kinds of the error table.
func TestLoginAndClassify(t *testing.T) {
	wx := wechattest.NewServer("wx1234567890abcdef", "secret")
	defer wx.Close()
	q := qqtest.NewServer("1109000000", "secret")
	defer q.Close()
	d := douyintest.NewServer("tt1234567890abcdef", "secret")
	defer d.Close()
	k := kuaishoutest.NewServer("ks000000000000000000", "secret")
	defer k.Close()
	b := baidutest.NewServer("0123456789abcdefABCDEF0123456789", "secret")
	defer b.Close()
	for _, c := range []struct {
		name, appID, url string
		openID           func(string) string
		refuse           func()
		code             string
		sentinels        []error // timeout, unavailable, bad response, invalid input, decrypt, watermark
	}{
		{"wechat", "wx1234567890abcdef", wx.URL, wx.OpenID, func() { wx.FailNext(wechattest.APICode2Session, 40029, 1) }, "40029",
			[]error{wechat.ErrTimeout, wechat.ErrUnavailable, wechat.ErrBadResponse, wechat.ErrInvalidInput, wechat.ErrDecrypt, wechat.ErrWatermark}},
		{"qq", "1109000000", q.URL, q.OpenID, func() { q.FailNext(qqtest.CodeInvalidCode, 1) }, "40029",
			[]error{qq.ErrTimeout, qq.ErrUnavailable, qq.ErrBadResponse, qq.ErrInvalidInput, qq.ErrDecrypt, qq.ErrWatermark}},
		{"douyin", "tt1234567890abcdef", d.URL, d.OpenID, func() { d.FailNext(douyintest.CodeBadCode, 1) }, "40018",
			[]error{douyin.ErrTimeout, douyin.ErrUnavailable, douyin.ErrBadResponse, douyin.ErrInvalidInput, douyin.ErrDecrypt, douyin.ErrWatermark}},
		{"kuaishou", "ks000000000000000000", k.URL, k.OpenID, func() { k.FailNext(kuaishoutest.ResultBadParameter, 1) }, "100200100",
			[]error{kuaishou.ErrTimeout, kuaishou.ErrUnavailable, kuaishou.ErrBadResponse, kuaishou.ErrInvalidInput, kuaishou.ErrDecrypt, kuaishou.ErrWatermark}},
		{"baidu", "0123456789abcdefABCDEF0123456789", b.URL, b.OpenID, func() { b.FailNext(baidutest.APICode2Session, "invalid_grant", 1) }, "invalid_grant",
			[]error{baidu.ErrTimeout, baidu.ErrUnavailable, baidu.ErrBadResponse, baidu.ErrInvalidInput, baidu.ErrDecrypt, baidu.ErrWatermark}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlatform(t, c.name, c.appID, c.url)
			id, err := p.Login(context.Background(), "alice")
			if err != nil || id.OpenID != c.openID("alice") || id.SessionKey == "" {
				t.Fatalf("login: %+v %v", id.OpenID, err)
			}
			c.refuse()
			_, err = p.Login(context.Background(), "bob")
			if f := p.Classify(err); f.Kind != platform.InvalidCode || p.ErrorCode(err) != c.code {
				t.Fatalf("refusal %v: %v %q", err, f.Kind, p.ErrorCode(err))
			}
			kinds := []platform.Kind{platform.Timeout, platform.Unavailable, platform.BadResponse, platform.InvalidInput, platform.Decrypt, platform.Watermark}
			for i, s := range c.sentinels {
				err := fmt.Errorf("x: %w", s)
				if got := p.Classify(err).Kind; got != kinds[i] {
					t.Errorf("%v: %v, want %v", s, got, kinds[i])
				}
				if p.ErrorCode(err) != "" {
					t.Errorf("%v carries a code", s)
				}
			}
			if _, ok := p.(platform.Sealer); !ok {
				t.Errorf("not a Sealer")
			}
		})
	}
}
