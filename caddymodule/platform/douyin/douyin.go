// Package douyin is the wechat_auth.platforms.douyin module: Douyin mini
// programs, over the client in package platforms/douyin of this module.
// Douyin copied WeChat's flow: a code for an openid and a 16-byte session
// key, open data sealed with AES-128-CBC under it, a watermark appid.
package douyin

import (
	"context"
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
	return wrap(douyin.NewClient(app.AppID, app.AppSecret, opts...)), nil
}

// UnmarshalCaddyfile accepts `platform douyin`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// wrap returns the shared session-key Platform over c. A refusal that
// is not the user's (bad credentials, unknown codes) is a 502: the
// gateway's configuration or Douyin's answer, not the client, is at fault.
// ErrorCode is Douyin's err_no.
func wrap(c *douyin.Client) *platform.SessionKeyPlatform {
	return &platform.SessionKeyPlatform{
		Code2Session: func(ctx context.Context, code string) (platform.Identity, error) {
			s, err := c.Code2Session(ctx, code)
			if err != nil {
				return platform.Identity{}, err
			}
			return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
		},
		Decrypt: c.Decrypt,
		DecryptPhone: func(sessionKey, encryptedData, iv string) (platform.Phone, error) {
			info, err := c.DecryptPhone(sessionKey, encryptedData, iv)
			if err != nil {
				return platform.Phone{}, err
			}
			return platform.Phone{PhoneNumber: info.PhoneNumber, PurePhoneNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}, nil
		},
		Refusals: []platform.Refusal{
			{Is: douyin.IsInvalidCode, Kind: platform.InvalidCode},
			{Is: douyin.IsSystemBusy, Kind: platform.Unavailable},
		},
		Sentinels: platform.Sentinels{
			Timeout:      douyin.ErrTimeout,
			Unavailable:  douyin.ErrUnavailable,
			BadResponse:  douyin.ErrBadResponse,
			InvalidInput: douyin.ErrInvalidInput,
			Decrypt:      douyin.ErrDecrypt,
			Watermark:    douyin.ErrWatermark,
		},
		Code: func(err error) string {
			return platform.APICode(err, func(e *douyin.APIError) string { return strconv.Itoa(e.Code) })
		},
	}
}

// Interface guards
var (
	_ platform.Module       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
