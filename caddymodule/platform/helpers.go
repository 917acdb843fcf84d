package platform

import (
	"errors"
	"sort"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Sentinels are a client package's sentinel errors, one per failure kind
// that is not the platform's own refusal; a nil one matches nothing.
type Sentinels struct {
	Timeout, Unavailable, BadResponse, InvalidInput, Decrypt, Watermark error
}

// Kind is the kind of the first sentinel err wraps, in the order of the
// fields, or Unknown.
func (s Sentinels) Kind(err error) Kind {
	for _, c := range []struct {
		sentinel error
		kind     Kind
	}{
		{s.Timeout, Timeout},
		{s.Unavailable, Unavailable},
		{s.BadResponse, BadResponse},
		{s.InvalidInput, InvalidInput},
		{s.Decrypt, Decrypt},
		{s.Watermark, Watermark},
	} {
		if c.sentinel != nil && errors.Is(err, c.sentinel) {
			return c.kind
		}
	}
	return Unknown
}

// Registered returns the Info of every platform module of this build, by
// module name (wechat, qq, ...), and the names sorted.
func Registered() (map[string]Info, []string) {
	infos := make(map[string]Info)
	var names []string
	for _, mi := range caddy.GetModules(Namespace) {
		m, ok := mi.New().(Module)
		if !ok {
			continue
		}
		infos[mi.ID.Name()] = m.Info()
		names = append(names, mi.ID.Name())
	}
	sort.Strings(names)
	return infos, names
}

// DefaultHeaders are the default identity header names of a platform
// whose Info.HeaderPrefix is prefix, in the order openid, unionid, phone,
// country code, app id.
func DefaultHeaders(prefix string) [5]string {
	return [5]string{prefix + "-OpenID", prefix + "-UnionID", prefix + "-Phone", prefix + "-Country-Code", prefix + "-AppID"}
}

// NoSettings parses the Caddyfile of a platform module without settings:
// the platform's name and nothing else.
func NoSettings(d *caddyfile.Dispenser) error {
	d.Next() // the platform's name
	name := d.Val()
	if d.NextArg() {
		return d.Errf("platform %s takes no arguments; got %q", name, d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("platform %s has no settings; got %q", name, d.Val())
	}
	return nil
}
