// Package wechat is the wechat_auth.platforms.wechat module: WeChat, the
// handler's default platform, over the client in package wechat of this
// module.
package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	wx "github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module is the WeChat platform. It has no settings of its own: app_id,
// app_secret and api_base are the handler's.
type Module struct{}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  platform.Namespace + ".wechat",
		New: func() caddy.Module { return new(Module) },
	}
}

// Info describes WeChat.
func (Module) Info() platform.Info {
	return platform.Info{
		Title:        "WeChat",
		LoginCall:    "wx.login",
		HeaderPrefix: "X-WeChat",
		APIBase:      wx.DefaultBaseURL,
		CheckAppID:   CheckAppID,
	}
}

// New returns the WeChat client of app.
func (Module) New(app platform.App) (platform.Platform, error) {
	opts := []wx.Option{
		wx.WithTimeout(app.Timeout),
		wx.WithMaxDataAge(app.MaxDataAge),
	}
	if app.APIBase != "" {
		opts = append(opts, wx.WithBaseURL(app.APIBase))
	}
	if app.Observe != nil {
		opts = append(opts, wx.WithObserver(app.Observe))
	}
	return Wrap(wx.NewClient(app.AppID, app.AppSecret, opts...)), nil
}

// UnmarshalCaddyfile accepts `platform wechat`, with no arguments or block.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return platform.NoSettings(d)
}

// CheckAppID refuses what cannot be a mini program's AppID: "wx" and 16
// hex digits.
func CheckAppID(id string) error {
	ok := len(id) == 18 && strings.HasPrefix(id, "wx")
	for i := 2; ok && i < len(id); i++ {
		c := id[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	if !ok {
		return fmt.Errorf("app_id %q is not a mini program AppID (wx followed by 16 hex digits)", id)
	}
	return nil
}

// Platform is WeChat for one app. The handler reaches Client for what
// only WeChat has (the phone code API, the upstream API's duties).
type Platform struct {
	Client *wx.Client
}

// Wrap returns the Platform of a WeChat client.
func Wrap(c *wx.Client) *Platform { return &Platform{Client: c} }

// Login is code2Session.
func (p *Platform) Login(ctx context.Context, code string) (platform.Identity, error) {
	s, err := p.Client.Code2Session(ctx, code)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey}, nil
}

// Classify maps an error of the wechat package.
func (p *Platform) Classify(err error) platform.Failure {
	return platform.Failure{Kind: Kind(err)}
}

// Kind is the failure kind of an error of the wechat package.
func Kind(err error) platform.Kind {
	switch {
	case wx.IsInvalidCode(err):
		return platform.InvalidCode
	case wx.IsUserBlocked(err):
		return platform.UserBlocked
	case wx.IsRateLimited(err):
		return platform.RateLimited
	case errors.Is(err, wx.ErrTimeout):
		return platform.Timeout
	case errors.Is(err, wx.ErrUnavailable), wx.IsSystemBusy(err):
		return platform.Unavailable
	case errors.Is(err, wx.ErrInvalidInput):
		return platform.InvalidInput
	case errors.Is(err, wx.ErrWatermark):
		return platform.Watermark
	case errors.Is(err, wx.ErrDecrypt):
		return platform.Decrypt
	case errors.Is(err, wx.ErrBadResponse):
		return platform.BadResponse
	}
	return platform.Unknown
}

// ErrorCode is WeChat's errcode.
func (p *Platform) ErrorCode(err error) string {
	var apiErr *wx.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(apiErr.Code)
	}
	return ""
}

// OpenSealed decrypts open data and checks its watermark.
func (p *Platform) OpenSealed(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	return p.Client.Decrypt(sessionKey, encryptedData, iv)
}

// OpenPhone decrypts the legacy getPhoneNumber payload.
func (p *Platform) OpenPhone(sessionKey, encryptedData, iv string) (platform.Phone, error) {
	info, err := p.Client.DecryptPhone(sessionKey, encryptedData, iv)
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
