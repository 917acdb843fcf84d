// Package kuaishou is the wechat_auth.platforms.kuaishou module: Kuaishou mini
// programs, over the client in package platforms/kuaishou of this module.
// Kuaishou copied WeChat's flow: a code for an openid and a 16-byte session
// key, open data sealed with AES-128-CBC under it, a watermark appid.
package kuaishou

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the Kuaishou platform. It has no settings of its own: app_id,
// app_secret and api_base are the handler's.
type Module struct{}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".kuaishou",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes Kuaishou.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "Kuaishou",
		LoginCall:    "ks.login",
		HeaderPrefix: "X-Kuaishou",
		APIBase:      kuaishou.DefaultBaseURL,
		CheckAppID:   func(id string) error { return platform.CheckAppIDChars("Kuaishou", id) },
	}
}

// New returns the Kuaishou client of app.
func (Module) New(app platform.App) (platform.Platform, error) {
	opts := []kuaishou.Option{
		kuaishou.WithTimeout(app.Timeout),
		kuaishou.WithMaxDataAge(app.MaxDataAge),
	}
	if app.APIBase != "" {
		opts = append(opts, kuaishou.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, kuaishou.WithObserver(app.Observe))
	}
	return &Platform{client: kuaishou.NewClient(app.AppID, app.AppSecret, opts...)}, nil
}

// UnmarshalCaddyfile accepts `platform kuaishou`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// Platform is Kuaishou for one app.
type Platform struct {
	client *kuaishou.Client
}

// Login is code2session.
func (p *Platform) Login(ctx context.Context, code string) (platform.Identity, error) {
	s, err := p.client.Code2Session(ctx, code)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// sentinels are the kuaishou package's errors by kind.
func sentinels() platform.Sentinels {
	return platform.Sentinels{
		Timeout:      kuaishou.ErrTimeout,
		Unavailable:  kuaishou.ErrUnavailable,
		BadResponse:  kuaishou.ErrBadResponse,
		InvalidInput: kuaishou.ErrInvalidInput,
		Decrypt:      kuaishou.ErrDecrypt,
		Watermark:    kuaishou.ErrWatermark,
	}
}

// Classify maps an error of the kuaishou package. A refusal that is not the
// user's (bad credentials, unknown codes) is a 502: the gateway's
// configuration or Kuaishou's answer, not the client, is at fault.
func (p *Platform) Classify(err error) platform.Failure {
	switch {
	case kuaishou.IsInvalidCode(err):
		return platform.Failure{Kind: platform.InvalidCode}
	}
	return platform.Failure{Kind: sentinels().Kind(err)}
}

// ErrorCode is Kuaishou's result.
func (p *Platform) ErrorCode(err error) string {
	var apiErr *kuaishou.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(apiErr.Code)
	}
	return ""
}

// OpenSealed decrypts open data and checks its watermark.
func (p *Platform) OpenSealed(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	return p.client.Decrypt(sessionKey, encryptedData, iv)
}

// OpenPhone decrypts the legacy getPhoneNumber payload.
func (p *Platform) OpenPhone(sessionKey, encryptedData, iv string) (platform.Phone, error) {
	info, err := p.client.DecryptPhone(sessionKey, encryptedData, iv)
	if err != nil {
		return platform.Phone{}, err
	}
	return platform.Phone{PhoneNumber: info.PhoneNumber, PurePhoneNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}, nil
}

// Interface guards
var (
	_ platform.Module       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
	_ platform.Platform     = (*Platform)(nil)
	_ platform.Sealer       = (*Platform)(nil)
)
