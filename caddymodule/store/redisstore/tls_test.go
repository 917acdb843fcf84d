package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
)

// TestRedisStoreTLS: the store talks TLS to a standalone server, to the
// sentinels and the primary they name, and to every cluster node, each
// checked against the CA.
func TestRedisStoreTLS(t *testing.T) {
	tc := redistest.NewTLS(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			d := startDeployment(t, mode, tc)
			s := d.open(t, storetest.AppID(t, ""), nil)
			waitLive(t, s)
			h := storetest.Hash("tls")
			storetest.MustCreate(t, s, h, store.User{OpenID: "o", SessionKey: "k"}, time.Hour)
			storetest.MustLookup(t, s, h)
			if _, err := s.RevokeUser(context.Background(), "o"); err != nil {
				t.Fatal(err)
			}
			storetest.WantNotFound(t, s, h)

			// Without the CA, the certificate is refused: a store
			// failure, never "not found".
			bad := d.open(t, storetest.AppID(t, "untrusted"), func(m *Config) { m.tlsRoots = nil; m.Timeout = caddy.Duration(300 * time.Millisecond) })
			if _, err := bad.Lookup(context.Background(), h); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("an untrusted certificate: %v", err)
			}
		})
	}
}
