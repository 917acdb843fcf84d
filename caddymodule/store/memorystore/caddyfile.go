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
//
// snapshot <file> is the old name of persist, still accepted.
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
			err = caddyconf.OneArg(d, &m.Snapshot)
		default:
			err = d.Errf("unrecognized memory store subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
		if m.Persist != "" && m.Snapshot != "" {
			return d.Errf("persist and snapshot are the same setting (snapshot is its old name): give only persist")
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*MemoryStore)(nil)
