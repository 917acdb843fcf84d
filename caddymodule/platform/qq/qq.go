// Package qq is the wechat_auth.platforms.qq module: QQ mini
// programs, over the client in package platforms/qq of this module.
// QQ copied WeChat's flow: a code for an openid and a 16-byte session
// key, open data sealed with AES-128-CBC under it, a watermark appid.
package qq

import (
	"context"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/qq"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the QQ platform. It has no settings of its own: app_id,
// app_secret and api_base are the handler's.
type Module struct{}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".qq",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes QQ.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "QQ",
		LoginCall:    "qq.login",
		HeaderPrefix: "X-QQ",
		APIBase:      qq.DefaultBaseURL,
		CheckAppID:   func(id string) error { return platform.CheckDigits("QQ", id, 5, 20) },
	}
}

// New returns the QQ client of app.
func (Module) New(app platform.App) (platform.Platform, error) {
	opts := []qq.Option{
		qq.WithTimeout(app.Timeout),
		qq.WithMaxDataAge(app.MaxDataAge),
	}
	if app.APIBase != "" {
		opts = append(opts, qq.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, qq.WithObserver(app.Observe))
	}
	return wrap(qq.NewClient(app.AppID, app.AppSecret, opts...)), nil
}

// UnmarshalCaddyfile accepts `platform qq`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// wrap returns the shared session-key Platform over c. A refusal that
// is not the user's (bad credentials, unknown codes) is a 502: the
// gateway's configuration or QQ's answer, not the client, is at fault.
// ErrorCode is QQ's errcode.
func wrap(c *qq.Client) *platform.SessionKeyPlatform {
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
			{Is: qq.IsInvalidCode, Kind: platform.InvalidCode},
			{Is: qq.IsRateLimited, Kind: platform.RateLimited},
			{Is: qq.IsSystemBusy, Kind: platform.Unavailable},
		},
		Sentinels: platform.Sentinels{
			Timeout:      qq.ErrTimeout,
			Unavailable:  qq.ErrUnavailable,
			BadResponse:  qq.ErrBadResponse,
			InvalidInput: qq.ErrInvalidInput,
			Decrypt:      qq.ErrDecrypt,
			Watermark:    qq.ErrWatermark,
		},
		Code: func(err error) string {
			return platform.APICode(err, func(e *qq.APIError) string { return strconv.Itoa(e.Code) })
		},
	}
}

// Interface guards
var (
	_ platform.Module       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
