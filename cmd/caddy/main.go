// Command caddy is Caddy with the standard modules and caddy-wechat-auth,
// for running the demo and the benchmarks straight from a checkout:
//
//	go run ./cmd/caddy run --config Caddyfile.example
//
// Production builds use xcaddy (see the README); both give the same binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-wechat-auth/caddy-wechat-auth"
)

func main() {
	caddycmd.Main()
}
