package memorystore

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
)

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	memory {
//	    max_sessions <n>
//	    persist      <file>
//	}
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.Errf("the memory store takes no arguments, only a block; got %q", d.Val())
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "max_sessions":
			err = caddyconf.Int(d, &m.MaxSessions, 1, maxMaxSessions)
		case "persist":
			err = caddyconf.OneArg(d, &m.Persist)
		case "snapshot":
			err = d.Errf("unknown memory store subdirective 'snapshot' (did you mean 'persist'?)")
		default:
			err = d.Errf("unrecognized memory store subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*MemoryStore)(nil)
