package wechatmock

import (
	"fmt"
	"net/http"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou/kuaishoutest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq/qqtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// fake is one platform's fake server API with the knobs the mock sets.
type fake struct {
	http.Handler
	setUnionID func(user, unionID string) // nil: the platform has no unionid
	setPhone   func(user, phone string)
}

// newFake makes the fake of m.Platform for appID.
func (m *Mock) newFake(appID, secret string) (fake, error) {
	switch m.Platform {
	case "", "wechat":
		f := wechattest.New(appID, secret)
		return fake{f, f.SetUnionID, func(u, p string) { f.SetPhone(u, p, "86") }}, nil
	case "qq":
		f := qqtest.New(appID, secret)
		return fake{f, f.SetUnionID, func(u, p string) { f.SetPhone(u, p, "86") }}, nil
	case "douyin":
		f := douyintest.New(appID, secret)
		return fake{f, f.SetUnionID, func(u, p string) { f.SetPhone(u, p, "86") }}, nil
	case "kuaishou":
		f := kuaishoutest.New(appID, secret)
		return fake{f, f.SetUnionID, func(u, p string) { f.SetPhone(u, p, "86") }}, nil
	case "baidu":
		f := baidutest.New(appID, secret)
		return fake{f, nil, f.SetPhone}, nil
	case "alipay":
		return m.newAlipay(appID)
	}
	return fake{}, fmt.Errorf("wechat_mock: unknown platform %q (wechat, qq, douyin, kuaishou, baidu, alipay)", m.Platform)
}

// newAlipay makes the fake Alipay: it checks our calls with the app's
// public key and signs its answers with the demo "Alipay" private key.
func (m *Mock) newAlipay(appID string) (fake, error) {
	repl := caddy.NewReplacer()
	read := func(name, value string) ([]byte, error) {
		path, err := caddyconf.Resolve(repl, name, value)
		if err != nil {
			return nil, err
		}
		if path == "" {
			return nil, fmt.Errorf("wechat_mock platform alipay: %s is required", name)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("wechat_mock platform alipay: %s: cannot read %q", name, path)
		}
		return data, nil
	}
	data, err := read("app_public_key_file", m.AppPublicKeyFile)
	if err != nil {
		return fake{}, err
	}
	appPub, err := alipay.ParsePublicKeyPEM(data)
	if err != nil {
		return fake{}, fmt.Errorf("wechat_mock platform alipay: app_public_key_file: %v", err)
	}
	if data, err = read("alipay_private_key_file", m.AlipayPrivateKeyFile); err != nil {
		return fake{}, err
	}
	alipayKey, err := alipay.ParsePrivateKeyPEM(data)
	if err != nil {
		return fake{}, fmt.Errorf("wechat_mock platform alipay: alipay_private_key_file: %v", err)
	}
	opts := []alipaytest.Option{alipaytest.WithAlipayKey(alipayKey)}
	if m.AESKey != "" {
		key, err := alipay.ParseAESKey(m.AESKey)
		if err != nil {
			return fake{}, fmt.Errorf("wechat_mock platform alipay: aes_key: %v", err)
		}
		opts = append(opts, alipaytest.WithAESKey(key))
	}
	f := alipaytest.New(appID, appPub, opts...)
	return fake{f, nil, f.SetPhone}, nil
}

// unmarshalPlatform parses `platform <name>` and, for Alipay, its block:
//
//	platform alipay {
//	    app_public_key_file     <path>
//	    alipay_private_key_file <path>
//	    aes_key                 <base64>
//	}
func (m *Mock) unmarshalPlatform(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Err("platform needs a name: wechat, qq, douyin, kuaishou, baidu, alipay")
	}
	m.Platform = d.Val()
	if d.NextArg() {
		return d.Errf("platform takes one name; got another argument: %q", d.Val())
	}
	fields := map[string]*string{
		"app_public_key_file":     &m.AppPublicKeyFile,
		"alipay_private_key_file": &m.AlipayPrivateKeyFile,
		"aes_key":                 &m.AESKey,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		field, ok := fields[d.Val()]
		if !ok || m.Platform != "alipay" {
			return d.Errf("unrecognized wechat_mock platform %s setting %q", m.Platform, d.Val())
		}
		if err := caddyconf.OneArg(d, field); err != nil {
			return err
		}
	}
	return nil
}
