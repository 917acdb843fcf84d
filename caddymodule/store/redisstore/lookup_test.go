package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// TestRedisStoreRoundTrips pins what a look-up with the cache off costs:
// one GET, on every deployment.
func TestRedisStoreRoundTrips(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			s := d.open(t, storetest.AppID(t, ""), withCache(0))
			var hs []store.TokenHash
			for i := range 20 {
				h := storetest.Hash(fmt.Sprint("rt-", i))
				hs = append(hs, h)
				storetest.MustCreate(t, s, h, store.User{OpenID: fmt.Sprint("o-", i), SessionKey: "k"}, time.Hour)
			}
			c := countCommands(t, s)
			for _, h := range hs {
				storetest.MustLookup(t, s, h)
			}
			if n := c.roundTrips.Load(); n != int64(len(hs)) {
				t.Fatalf("%d look-ups made %d round trips (%d commands: %v), want one each", len(hs), n, c.commands.Load(), c.names)
			}
		})
	}
}
