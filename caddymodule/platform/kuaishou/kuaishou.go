// Package kuaishou is the wechat_auth.platforms.kuaishou module: Kuaishou mini
// programs, over the client in package platforms/kuaishou of this module.
// Kuaishou copied WeChat's flow: a code for an openid and a 16-byte session
// key, open data sealed with AES-128-CBC under it, a watermark appid.
package kuaishou

import (
	"context"
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
	return wrap(kuaishou.NewClient(app.AppID, app.AppSecret, opts...)), nil
}

// UnmarshalCaddyfile accepts `platform kuaishou`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// wrap returns the shared session-key Platform over c. A refusal that
// is not the user's (bad credentials, unknown codes) is a 502: the
// gateway's configuration or Kuaishou's answer, not the client, is at fault.
// ErrorCode is Kuaishou's result.
func wrap(c *kuaishou.Client) *platform.SessionKeyPlatform {
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
			{Is: kuaishou.IsInvalidCode, Kind: platform.InvalidCode},
		},
		Sentinels: platform.Sentinels{
			Timeout:      kuaishou.ErrTimeout,
			Unavailable:  kuaishou.ErrUnavailable,
			BadResponse:  kuaishou.ErrBadResponse,
			InvalidInput: kuaishou.ErrInvalidInput,
			Decrypt:      kuaishou.ErrDecrypt,
			Watermark:    kuaishou.ErrWatermark,
		},
		Code: func(err error) string {
			return platform.APICode(err, func(e *kuaishou.APIError) string { return strconv.Itoa(e.Code) })
		},
	}
}

// Interface guards
var (
	_ platform.Module       = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
