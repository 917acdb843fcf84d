package store

import (
	"fmt"
	"sort"

	"github.com/caddyserver/caddy/v2"
)

// live indexes the open stores of every provisioned wechat_auth handler,
// so that the admin API (which lives outside any HTTP config) can reach
// them. It is a UsagePool like the stores themselves: a reload registers
// the new config's stores before the old config releases its own, so the
// admin API never sees a window without them.
var live = caddy.NewUsagePool()

// Registered is one open store as the admin API sees it.
type Registered struct {
	AppID string
	Kind  string // the store module's name: "memory", "redis", ...
	Store Store
}

func (Registered) Destruct() error { return nil }

// Register makes an open store reachable through Live until release is
// called (from the handler's Cleanup).
func Register(appID, kind string, s Store) (release func()) {
	key := fmt.Sprintf("%s\x00%s\x00%p", appID, kind, s)
	live.LoadOrStore(key, Registered{AppID: appID, Kind: kind, Store: s})
	return func() { _, _ = live.Delete(key) }
}

// Live returns the distinct registered stores, of one app when appID is
// not empty, sorted by app id.
func Live(appID string) []Registered {
	seen := map[Store]bool{}
	var out []Registered
	live.Range(func(_, v any) bool {
		r := v.(Registered)
		if (appID == "" || r.AppID == appID) && !seen[r.Store] {
			seen[r.Store] = true
			out = append(out, r)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out
}
