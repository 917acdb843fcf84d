package redisstore

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
)

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	redis {
//	    mode              standalone|sentinel|cluster
//	    address           <host:port>...
//	    master_name       <name>
//	    sentinel_username <name>
//	    sentinel_password <password>
//	    username          <name>
//	    password          <password>
//	    db                <n>
//	    key_prefix        <prefix>
//	    tls
//	    cache_ttl         <duration>|off
//	    cache_size        <n>
//	    timeout           <duration>
//	}
func (r *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.Errf("the redis store takes no arguments, only a block; got %q", d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "mode":
			err = caddyconf.OneArg(d, &r.Mode)
			if err == nil && r.Mode != ModeStandalone && r.Mode != ModeSentinel && r.Mode != ModeCluster {
				err = d.Errf("mode: %q is not one of standalone, sentinel, cluster", r.Mode)
			}
		case "address":
			r.Address = append(r.Address, d.RemainingArgs()...)
			if len(r.Address) == 0 {
				err = d.Err("address needs one or more host:port")
			}
		case "master_name":
			err = caddyconf.OneArg(d, &r.MasterName)
		case "sentinel_username":
			err = caddyconf.OneArg(d, &r.SentinelUsername)
		case "sentinel_password":
			err = caddyconf.OneArg(d, &r.SentinelPassword)
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
		case "cache_size":
			err = caddyconf.Int(d, &r.CacheSize, 1, maxCacheSize)
		case "timeout":
			err = caddyconf.Duration(d, &r.Timeout, timeoutRange)
		default:
			err = d.Errf("unrecognized redis store subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	// What only makes sense together is known at the end of the block.
	if err := r.checkTopology(); err != nil {
		return d.Errf("redis store: %v", err)
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Config)(nil)
