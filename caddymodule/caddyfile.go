package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	wechatplatform "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("wechat_auth", parseCaddyfile)
	// Authentication comes before anything that reads or forwards the
	// request: request_header, handle/route, respond, reverse_proxy and
	// file_server all see the identity headers already set (and the
	// client's forged ones already gone). No `order` option needed.
	httpcaddyfile.RegisterDirectiveOrder("wechat_auth", httpcaddyfile.Before, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	wechat_auth [<matcher>] {
//	    platform            <name> [{ ... }]
//	    app_id              <appid>
//	    app_secret          <secret>
//	    api_base            <url>
//	    path_prefix         <path>
//	    session_ttl         <duration>
//	    session_key_grace   <duration>|off
//	    timeout             <duration>
//	    body_timeout        <duration>
//	    refused_code_limit  <n> [<window>] | off
//	    mode                required|optional
//	    require_phone
//	    serve               miniprogram|upstream
//	    max_data_age        <duration>|off
//	    header_openid       <name>
//	    header_unionid      <name>
//	    header_phone        <name>
//	    header_country_code <name>
//	    header_appid        <name>
//	    store <backend> [{ ... }]
//	}
//
// Values are checked here, so that `caddy adapt` names the file and line
// of a bad one; Validate checks the same for JSON configs.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("wechat_auth takes no arguments, only a block; got %q", d.Val())
	}
	// Subdirectives that take one plain string.
	plain := map[string]*string{
		"app_secret":          &h.AppSecret,
		"header_openid":       &h.HeaderOpenID,
		"header_unionid":      &h.HeaderUnionID,
		"header_phone":        &h.HeaderPhone,
		"header_country_code": &h.HeaderCountryCode,
		"header_appid":        &h.HeaderAppID,
	}
	h.info = wechatplatform.Module{}.Info() // until a platform is named
	var appIDAt caddyfile.Token
	for d.NextBlock(0) {
		sub := d.Val()
		if field, ok := plain[sub]; ok {
			if err := caddyconf.OneArg(d, field); err != nil {
				return err
			}
			continue
		}
		var err error
		switch sub {
		case "platform":
			err = h.unmarshalPlatform(d)
		case "app_id":
			err = caddyconf.OneArg(d, &h.AppID)
			// Checked once the platform is known, at this line.
			appIDAt = d.Token()
		case "api_base":
			err = caddyconf.OneArg(d, &h.APIBase)
			if err == nil && !hasPlaceholder(h.APIBase) {
				err = wrap(d, checkAPIBase(h.APIBase))
			}
		case "path_prefix":
			err = caddyconf.OneArg(d, &h.PathPrefix)
			if err == nil {
				err = wrap(d, checkPathPrefix(h.PathPrefix))
			}
		case "session_ttl":
			err = caddyconf.Duration(d, &h.SessionTTL, sessionTTLRange)
		case "session_key_grace":
			var grace caddy.Duration
			err = caddyconf.Duration(d, &grace, sessionKeyGraceRange)
			h.SessionKeyGrace = &grace
		case "timeout":
			err = caddyconf.Duration(d, &h.Timeout, timeoutRange)
		case "body_timeout":
			err = caddyconf.Duration(d, &h.BodyTimeout, bodyTimeoutRange)
		case "refused_code_limit":
			err = h.unmarshalRefusedCodeLimit(d)
		case "max_data_age":
			err = caddyconf.Duration(d, &h.MaxDataAge, maxDataAgeRange)
		case "mode":
			err = caddyconf.OneArg(d, &h.Mode)
			if err == nil {
				err = wrap(d, checkMode(h.Mode))
			}
		case "serve":
			err = caddyconf.OneArg(d, &h.Serve)
			if err == nil {
				err = wrap(d, checkServe(h.Serve))
			}
		case "require_phone":
			err = caddyconf.NoArgs(d)
			h.RequirePhone = true
		case "store":
			err = h.unmarshalStore(d)
		default:
			err = d.Errf("unrecognized wechat_auth subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if h.AppID == "" {
		return d.Err("wechat_auth: app_id is required")
	}
	if !hasPlaceholder(h.AppID) {
		if err := checkPlatformAppID(h.info, h.AppID); err != nil {
			return errAt(appIDAt, err)
		}
	}
	if h.info.NoSecret && h.AppSecret != "" {
		return d.Err("wechat_auth: " + checkPlatformSecret(h.info, true).Error())
	}
	if !h.info.NoSecret && h.AppSecret == "" {
		return d.Err("wechat_auth: app_secret is required")
	}
	// Header names are judged together: they must not collide.
	withDefaults := *h
	withDefaults.applyDefaults()
	return wrap(d, checkHeaderNames(&withDefaults))
}

// unmarshalRefusedCodeLimit parses `refused_code_limit <n> [<window>]`
// and `refused_code_limit off`.
func (h *Handler) unmarshalRefusedCodeLimit(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Err("refused_code_limit needs a number of refused codes (and optionally a window), or off")
	}
	limit := 0
	if d.Val() != "off" {
		n, err := strconv.Atoi(d.Val())
		if err != nil {
			return d.Errf("refused_code_limit: %q is not a whole number (or off)", d.Val())
		}
		if n == 0 {
			return d.Err("refused_code_limit must be at least 1; use off to turn it off")
		}
		if err := caddyconf.CheckInt("refused_code_limit", n, 1, maxRefusedCodeLimit); err != nil {
			return d.Err(err.Error())
		}
		limit = n
		if d.NextArg() {
			v, err := caddyconf.ParseDuration(d, "refused_code_limit window", d.Val(), refusedWindowRange)
			if err != nil {
				return err
			}
			h.RefusedCodeWindow = v
		}
	}
	if d.NextArg() {
		return d.Errf("refused_code_limit takes a number and a window, or off; got another argument: %q", d.Val())
	}
	h.RefusedCodeLimit = &limit
	return nil
}

// unmarshalStore parses `store <backend> [{ ... }]`.
func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Errf("store needs a backend: %s", knownStores())
	}
	if h.StoreRaw != nil {
		return d.Err("store already specified")
	}
	name := d.Val()
	if _, err := caddy.GetModule(store.Namespace + "." + name); err != nil {
		return d.Errf("unknown store %q: the stores in this build are %s", name, knownStores())
	}
	unm, err := caddyfile.UnmarshalModule(d, store.Namespace+"."+name)
	if err != nil {
		return err
	}
	h.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", name, nil)
	return nil
}

// knownStores lists the store modules of this build.
func knownStores() string {
	var names []string
	for _, m := range caddy.GetModules(store.Namespace) {
		names = append(names, m.ID.Name())
	}
	return strings.Join(names, ", ")
}

// errAt is a Caddyfile error at the token tok (file and line), for a
// check that can only run after the block has been read.
func errAt(tok caddyfile.Token, err error) error {
	at := caddyfile.NewDispenser([]caddyfile.Token{tok})
	at.Next()
	return at.Err(err.Error())
}

// wrap turns a check's error into a Caddyfile error naming file and line.
func wrap(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	return d.Err(err.Error())
}

func hasPlaceholder(s string) bool { return strings.Contains(s, "{") }

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
