package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("wechat_auth", parseWeChatAuth)
	// Authentication comes before anything that reads or forwards the
	// request: request_header, handle/route, respond, reverse_proxy and
	// file_server all see the identity headers already set (and the
	// client's forged ones already gone). No `order` option needed.
	httpcaddyfile.RegisterDirectiveOrder("wechat_auth", httpcaddyfile.Before, "request_header")

	httpcaddyfile.RegisterHandlerDirective("wechat_mock", parseWeChatMock)
	httpcaddyfile.RegisterDirectiveOrder("wechat_mock", httpcaddyfile.Before, "respond")
}

func parseWeChatAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	wechat_auth [<matcher>] {
//	    app_id              <appid>
//	    app_secret          <secret>
//	    api_base            <url>
//	    path_prefix         <path>
//	    session_ttl         <duration>
//	    timeout             <duration>
//	    mode                required|optional
//	    require_phone
//	    max_data_age        <duration>
//	    header_openid       <name>
//	    header_unionid      <name>
//	    header_phone        <name>
//	    header_country_code <name>
//	    header_appid        <name>
//	    store <backend> [{ ... }]
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("wechat_auth takes no arguments, only a block; got %q", d.Val())
	}
	// Subdirectives that take one plain string.
	stringFields := map[string]*string{
		"app_id":              &h.AppID,
		"app_secret":          &h.AppSecret,
		"header_openid":       &h.HeaderOpenID,
		"header_unionid":      &h.HeaderUnionID,
		"header_phone":        &h.HeaderPhone,
		"header_country_code": &h.HeaderCountryCode,
		"header_appid":        &h.HeaderAppID,
	}
	for d.NextBlock(0) {
		sub := d.Val()
		if field, ok := stringFields[sub]; ok {
			if err := oneArg(d, field); err != nil {
				return err
			}
			continue
		}
		switch sub {
		case "api_base":
			if err := oneArg(d, &h.APIBase); err != nil {
				return err
			}
			if !strings.Contains(h.APIBase, "{") && !strings.HasPrefix(h.APIBase, "http://") && !strings.HasPrefix(h.APIBase, "https://") {
				return d.Errf("api_base must be an http:// or https:// URL, got %q", h.APIBase)
			}
		case "path_prefix":
			if err := oneArg(d, &h.PathPrefix); err != nil {
				return err
			}
			if !strings.HasPrefix(h.PathPrefix, "/") {
				return d.Errf("path_prefix must start with /, got %q", h.PathPrefix)
			}
		case "session_ttl":
			if err := durationArg(d, &h.SessionTTL, false); err != nil {
				return err
			}
		case "timeout":
			if err := durationArg(d, &h.Timeout, false); err != nil {
				return err
			}
		case "max_data_age":
			if err := durationArg(d, &h.MaxDataAge, true); err != nil {
				return err
			}
		case "mode":
			if err := oneArg(d, &h.Mode); err != nil {
				return err
			}
			if h.Mode != ModeRequired && h.Mode != ModeOptional {
				return d.Errf("mode must be %q or %q, got %q", ModeRequired, ModeOptional, h.Mode)
			}
		case "require_phone":
			if d.NextArg() {
				return d.Errf("require_phone takes no arguments")
			}
			h.RequirePhone = true
		case "store":
			if !d.NextArg() {
				return d.Errf("store needs a backend: memory or redis")
			}
			if h.StoreRaw != nil {
				return d.Errf("store already specified")
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "wechat_auth.stores."+name)
			if err != nil {
				return err
			}
			h.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", name, nil)
		default:
			return d.Errf("unrecognized wechat_auth subdirective %q", sub)
		}
	}
	if h.AppID == "" {
		return d.Err("wechat_auth: app_id is required")
	}
	if h.AppSecret == "" {
		return d.Err("wechat_auth: app_secret is required")
	}
	return nil
}

// oneArg reads exactly one argument of the current subdirective.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs one argument", sub)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one argument, got another: %q", sub, d.Val())
	}
	return nil
}

// durationArg reads one duration argument; zero is allowed only where it
// means "off".
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration, zeroOK bool) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", sub, s, err)
	}
	if dur < 0 || (dur == 0 && !zeroOK) {
		return d.Errf("%s must be a positive duration, got %q", sub, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
