package caddymodule

import (
	"fmt"
	"strings"

	"golang.org/x/net/http/httpguts"

	wechatplatform "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// checkAPIBase checks api_base as the WeChat client will use it.
func checkAPIBase(base string) error {
	if err := wechat.CheckBaseURL(base); err != nil {
		return fmt.Errorf("api_base %q must be an absolute http:// or https:// URL", base)
	}
	return nil
}

// checkAppID refuses what cannot be a WeChat mini program's AppID: "wx"
// and 16 hex digits. A typo here would otherwise pass `caddy validate`
// and fail every login with a WeChat error.
func checkAppID(id string) error {
	return checkPlatformAppID(wechatplatform.Module{}.Info(), id)
}

// checkMode accepts the two modes.
func checkMode(m string) error {
	if m != ModeRequired && m != ModeOptional {
		return fmt.Errorf("mode must be %q or %q, got %q", ModeRequired, ModeOptional, m)
	}
	return nil
}

// checkPathPrefix accepts an absolute path without query, fragment or
// white space; "/" serves the endpoints at /login, /phone, ...
func checkPathPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t\r\n") {
		return fmt.Errorf("path_prefix must be an absolute path such as /wechat, got %q", p)
	}
	return nil
}

// checkHeaderNames refuses identity header names that are not valid
// header field names, that collide with Authorization (stripping it would
// drop every token), or that collide with each other, compared the way
// the handler strips them (case-insensitive, "-" equal to "_").
func checkHeaderNames(h *Handler) error {
	seen := map[string]string{foldHeaderName("Authorization"): "Authorization"}
	for _, f := range headerFields(h) {
		if !httpguts.ValidHeaderFieldName(f.value) {
			return fmt.Errorf("%s: %q is not a valid header name", f.name, f.value)
		}
		folded := foldHeaderName(f.value)
		if other, dup := seen[folded]; dup {
			return fmt.Errorf("%s: %q collides with %s", f.name, f.value, other)
		}
		seen[folded] = f.name
	}
	return nil
}

type headerField struct{ name, value string }

// headerFields lists the identity header settings by subdirective name.
func headerFields(h *Handler) []headerField {
	return []headerField{
		{"header_openid", h.HeaderOpenID},
		{"header_unionid", h.HeaderUnionID},
		{"header_phone", h.HeaderPhone},
		{"header_country_code", h.HeaderCountryCode},
		{"header_appid", h.HeaderAppID},
	}
}
