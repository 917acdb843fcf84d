package redisstore

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
)

// maxDB bounds db: Redis's own default is 16 databases, and a
// configuration can raise that, but not to millions.
const maxDB = 1 << 16

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	redis {
//	    address    <host:port>
//	    username   <name>
//	    password   <password>
//	    db         <n>
//	    key_prefix <prefix>
//	    tls
//	    cache_ttl  <duration>|off
//	    timeout    <duration>
//	}
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.Errf("the redis store takes no arguments, only a block; got %q", d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "address":
			err = caddyconf.OneArg(d, &r.Address)
		case "username":
			err = caddyconf.OneArg(d, &r.Username)
		case "password":
			err = caddyconf.OneArg(d, &r.Password)
		case "db":
			err = caddyconf.Int(d, &r.DB, 0, maxDB)
		case "key_prefix":
			err = caddyconf.OneArg(d, &r.KeyPrefix)
		case "tls":
			err = caddyconf.NoArgs(d)
			r.TLS = true
		case "cache_ttl":
			var ttl caddy.Duration
			err = caddyconf.Duration(d, &ttl, cacheTTLRange)
			r.CacheTTL = &ttl
		case "timeout":
			err = caddyconf.Duration(d, &r.Timeout, timeoutRange)
		default:
			err = d.Errf("unrecognized redis store subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*RedisStore)(nil)
