// Package caddywechatauth makes Caddy the login server of WeChat Mini
// Programs. Build Caddy with it:
//
//	xcaddy build --with github.com/caddy-wechat-auth/caddy-wechat-auth
//
// The modules themselves live in the caddymodule package; this file only
// imports it, so that the module path xcaddy is given is a Go package.
package caddywechatauth

import (
	// Registers http.handlers.wechat_auth, http.handlers.wechat_mock and
	// the wechat_auth.stores modules.
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule"
)
