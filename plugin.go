// Package caddywechatauth makes Caddy the login server of WeChat Mini
// Programs. Build Caddy with it:
//
//	xcaddy build --with github.com/caddy-wechat-auth/caddy-wechat-auth
//
// The modules themselves live in the caddymodule package; this file only
// imports it, so that the module path xcaddy is given is a Go package.
// The dev-only wechat_mock handler is not in it: add
// github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock
// with a second --with for development builds.
package caddywechatauth

import (
	// Registers http.handlers.wechat_auth, admin.api.wechat_auth and the
	// wechat_auth.stores modules (memory, redis).
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule"
)
