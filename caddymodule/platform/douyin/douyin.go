// Package douyin is the wechat_auth.platforms.douyin module: Douyin mini
// programs, over the client in package platforms/douyin of this module.
// Douyin copied WeChat's flow: a code for an openid and a 16-byte session
// key, open data sealed with AES-128-CBC under it, a watermark appid.
package douyin

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the Douyin platform. It has no settings of its own: app_id,
// app_secret and api_base are the handler's.
type Module struct{}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".douyin",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes Douyin.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "Douyin",
		LoginCall:    "tt.login",
		HeaderPrefix: "X-Douyin",
		APIBase:      douyin.DefaultBaseURL,
		CheckAppID:   func(id string) error { return platform.CheckAppIDChars("Douyin", id) },
	}
}

// New returns the Douyin client of app.
func (Module) New(app platform.App) (platform.Platform, error) {
	opts := []douyin.Option{
		douyin.WithTimeout(app.Timeout),
		douyin.WithMaxDataAge(app.MaxDataAge),
	}
	if app.APIBase != "" {
		opts = append(opts, douyin.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, douyin.WithObserver(app.Observe))
	}
	return &Platform{client: douyin.NewClient(app.AppID, app.AppSecret, opts...)}, nil
}

// UnmarshalCaddyfile accepts `platform douyin`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// Platform is Douyin for one app.
type Platform struct {
	client *douyin.Client
}

// Login is code2session.
func (p *Platform) Login(ctx context.Context, code string) (platform.Identity, error) {
	s, err := p.client.Code2Session(ctx, code)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// sentinels are the douyin package's errors by kind.
func sentinels() platform.Sentinels {
	return platform.Sentinels{
		Timeout:      douyin.ErrTimeout,
		Unavailable:  douyin.ErrUnavailable,
		BadResponse:  douyin.ErrBadResponse,
		InvalidInput: douyin.ErrInvalidInput,
		Decrypt:      douyin.ErrDecrypt,
		Watermark:    douyin.ErrWatermark,
	}
}

// Classify maps an error of the douyin package. A refusal that is not the
// user's (bad credentials, unknown codes) is a 502: the gateway's
// configuration or Douyin's answer, not the client, is at fault.
func (p *Platform) Classify(err error) platform.Failure {
	switch {
	case douyin.IsInvalidCode(err):
		return platform.Failure{Kind: platform.InvalidCode}
	case douyin.IsSystemBusy(err):
		return platform.Failure{Kind: platform.Unavailable}
	}
	return platform.Failure{Kind: sentinels().Kind(err)}
}

// ErrorCode is Douyin's err_no.
func (p *Platform) ErrorCode(err error) string {
	var apiErr *douyin.APIError
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
