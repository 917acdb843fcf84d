// Command caddy is Caddy with the standard modules, caddy-wechat-auth and
// its dev-only wechat_mock, for running the demo and the benchmarks
// straight from a checkout:
//
//	go run ./cmd/caddy run --config Caddyfile.example
//
// Production builds use xcaddy without the mock (see the README).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wechat-auth/caddy-wechat-auth"
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock"
)

func main() {
	caddycmd.Main()
}
