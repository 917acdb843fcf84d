package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// TestRedisStoreConformance runs the store suite on a standalone server,
// through Sentinel and on a cluster, with the local cache on and off.
func TestRedisStoreConformance(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, nil)
			for _, cache := range []time.Duration{DefaultCacheTTL, 0} {
				t.Run(fmt.Sprint("cache_ttl=", cache), func(t *testing.T) {
					storetest.Suite{Open: func(t *testing.T, appID string) store.Store {
						return d.open(t, appID, withCache(cache))
					}}.Run(t)
				})
			}
		})
	}
}
