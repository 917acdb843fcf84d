// Package wechatmock is the wechat_mock Caddy handler: a fake of the
// WeChat server API (the tests' wechattest.Fake), or of another platform's
// (`platform qq`, ...: the fakes in platforms/<name>/<name>test), served
// from inside Caddy, so that a gateway can be tried with no account and no
// internet.
//
// It is for development only, and it is not in a production build: the
// plugin (the module root and package caddymodule) never imports it. The
// demo binary (cmd/caddy) does; add it to an xcaddy build with
//
//	xcaddy build --with github.com/caddy-wechat-auth/caddy-wechat-auth \
//	    --with github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock
//
// A fake WeChat hands out a session for any code it is given; a gateway
// pointed at it authenticates anybody.
package wechatmock

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
)

func init() {
	caddy.RegisterModule(Mock{})
	httpcaddyfile.RegisterHandlerDirective("wechat_mock", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_mock", httpcaddyfile.Before, "respond")
}

// pool keeps each mock's state (issued codes, session keys, tokens)
// across config reloads, so a reload in the demo logs nobody out.
var pool = caddy.NewUsagePool()

// Mock is the wechat_mock handler. Codes name users: "alice" and
// "alice:2" both log alice in, each code once. It is not for production,
// and says so in the log at start.
type Mock struct {
	// The AppID the mock accepts. Required; use the gateway's app_id.
	AppID string `json:"app_id,omitempty"`

	// The AppSecret the mock accepts. Required; placeholders are resolved
	// at provision.
	AppSecret string `json:"app_secret,omitempty"`

	// UnionIDs gives users a unionid (user name to unionid). Default: none.
	UnionIDs map[string]string `json:"unionids,omitempty"`

	// Phones sets users' phone numbers (user name to mainland number).
	// Default: a number derived from the user name.
	Phones map[string]string `json:"phones,omitempty"`

	// Platform whose server API the mock fakes: wechat, qq, douyin,
	// kuaishou, baidu or alipay. Default: wechat.
	Platform string `json:"platform,omitempty"`

	// Alipay only: the app's public key, which checks the gateway's
	// signed calls (the public half of its app_private_key_file).
	AppPublicKeyFile string `json:"app_public_key_file,omitempty"`

	// Alipay only: the fake Alipay's private key, which signs its
	// answers (the gateway's alipay_public_key_file is its public half).
	AlipayPrivateKeyFile string `json:"alipay_private_key_file,omitempty"`

	// Alipay only: the app's content key (base64 of 16 bytes) that seals
	// phone numbers; the gateway's aes_key. Default: a random one.
	AESKey string `json:"aes_key,omitempty"`

	poolKey string
	fake    fake
}

// CaddyModule returns the Caddy module information.
func (Mock) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_mock",
		New: func() caddy.Module { return new(Mock) },
	}
}

type mockState struct{ fake fake }

func (mockState) Destruct() error { return nil }

// Provision creates (or, on reload, reuses) the fake.
func (m *Mock) Provision(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	appID, err := caddyconf.Resolve(repl, "app_id", m.AppID)
	if err != nil {
		return err
	}
	secret, err := caddyconf.Resolve(repl, "app_secret", m.AppSecret)
	if err != nil {
		return err
	}
	if appID == "" || (secret == "" && m.Platform != "alipay") {
		return errors.New("wechat_mock: app_id and app_secret are required")
	}
	m.poolKey = m.Platform + "\x00" + appID + "\x00" + secret + "\x00" + m.AppPublicKeyFile + "\x00" + m.AlipayPrivateKeyFile + "\x00" + m.AESKey
	val, _, err := pool.LoadOrNew(m.poolKey, func() (caddy.Destructor, error) {
		f, err := m.newFake(appID, secret)
		return mockState{fake: f}, err
	})
	if err != nil {
		m.poolKey = ""
		return err
	}
	m.fake = val.(mockState).fake
	for user, id := range m.UnionIDs {
		if m.fake.setUnionID == nil {
			return fmt.Errorf("wechat_mock: platform %s has no unionid", m.Platform)
		}
		m.fake.setUnionID(user, id)
	}
	for user, phone := range m.Phones {
		m.fake.setPhone(user, phone)
	}
	ctx.Logger().Warn("wechat_mock serves a FAKE server API for development; it is not for production",
		zap.String("app_id", appID), zap.String("platform", cmp.Or(m.Platform, "wechat")))
	return nil
}

// Cleanup releases the shared fake.
func (m *Mock) Cleanup() error {
	if m.poolKey != "" {
		_, err := pool.Delete(m.poolKey)
		return err
	}
	return nil
}

// ServeHTTP answers as WeChat would. It is a terminal handler.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	m.fake.ServeHTTP(w, r)
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Mock
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// UnmarshalCaddyfile sets up the mock from Caddyfile tokens. Syntax:
//
//	wechat_mock [<matcher>] {
//	    platform   <name> [{ ... }]
//	    app_id     <appid>
//	    app_secret <secret>
//	    unionid    <user> <unionid>
//	    phone      <user> <number>
//	}
func (m *Mock) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("wechat_mock takes no arguments, only a block; got %q", d.Val())
	}
	for d.NextBlock(0) {
		sub := d.Val()
		switch sub {
		case "app_id":
			if err := caddyconf.OneArg(d, &m.AppID); err != nil {
				return err
			}
		case "app_secret":
			if err := caddyconf.OneArg(d, &m.AppSecret); err != nil {
				return err
			}
		case "platform":
			if err := m.unmarshalPlatform(d); err != nil {
				return err
			}
		case "unionid", "phone":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("%s needs two arguments: <user> <value>", sub)
			}
			target := &m.UnionIDs
			if sub == "phone" {
				target = &m.Phones
			}
			if *target == nil {
				*target = make(map[string]string)
			}
			(*target)[args[0]] = args[1]
		default:
			return d.Errf("unrecognized wechat_mock subdirective %q", sub)
		}
	}
	if m.AppID == "" || (m.AppSecret == "" && m.Platform != "alipay") {
		return d.Err("wechat_mock: app_id and app_secret are required")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Mock)(nil)
	_ caddy.CleanerUpper          = (*Mock)(nil)
	_ caddyhttp.MiddlewareHandler = (*Mock)(nil)
	_ caddyfile.Unmarshaler       = (*Mock)(nil)
)
