// Package baidu is the wechat_auth.platforms.baidu module: Baidu smart
// programs, over the client in package platforms/baidu of this module.
// app_id holds the App Key (Baidu's client_id), app_secret the App Secret
// (sk). The session key is 24 bytes and open data is AES-192-CBC, ending
// with the App Key, which the client checks is ours (Baidu's watermark).
package baidu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the Baidu platform. It has no settings of its own: app_id
// (the App Key), app_secret and api_base are the handler's.
type Module struct{}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".baidu",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes Baidu.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "Baidu",
		LoginCall:    "swan.getLoginCode",
		HeaderPrefix: "X-Baidu",
		APIBase:      baidu.DefaultBaseURL,
		CheckAppID:   checkAppKey,
	}
}

// checkAppKey refuses what cannot be an App Key: 32 letters and digits.
func checkAppKey(id string) error {
	if err := platform.CheckAppIDChars("Baidu", id); err != nil || len(id) != 32 {
		return fmt.Errorf("app_id %q is not a Baidu App Key (32 letters and digits)", id)
	}
	return nil
}

// New returns the Baidu client of app. Baidu's sealed data has no
// timestamp, so App.MaxDataAge does not apply.
func (Module) New(app platform.App) (platform.Platform, error) {
	opts := []baidu.Option{baidu.WithTimeout(app.Timeout)}
	if app.APIBase != "" {
		opts = append(opts, baidu.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, baidu.WithObserver(app.Observe))
	}
	return &Platform{client: baidu.NewClient(app.AppID, app.AppSecret, opts...)}, nil
}

// UnmarshalCaddyfile accepts `platform baidu`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// Platform is Baidu for one app.
type Platform struct {
	client *baidu.Client
}

// Login is jscode2sessionkey.
func (p *Platform) Login(ctx context.Context, code string) (platform.Identity, error) {
	s, err := p.client.Code2Session(ctx, code)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// Classify maps an error of the baidu package. OAuth errors other than
// invalid_grant are the configuration's or Baidu's: a 502.
func (p *Platform) Classify(err error) platform.Failure {
	if baidu.IsInvalidCode(err) {
		return platform.Failure{Kind: platform.InvalidCode}
	}
	return platform.Failure{Kind: platform.Sentinels{
		Timeout:      baidu.ErrTimeout,
		Unavailable:  baidu.ErrUnavailable,
		BadResponse:  baidu.ErrBadResponse,
		InvalidInput: baidu.ErrInvalidInput,
		Decrypt:      baidu.ErrDecrypt,
		Watermark:    baidu.ErrWatermark,
	}.Kind(err)}
}

// ErrorCode is Baidu's OAuth error ("invalid_grant").
func (p *Platform) ErrorCode(err error) string {
	var apiErr *baidu.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return ""
}

// OpenSealed decrypts open data and checks that it ends with our App Key.
func (p *Platform) OpenSealed(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	return p.client.Decrypt(sessionKey, encryptedData, iv)
}

// OpenPhone decrypts the getPhoneNumber payload ({"mobile"}: no country
// code, so none is bound or forwarded).
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
