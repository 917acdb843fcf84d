package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// TestPlatformsOnRedis: two gateways of one app on one Redis, for a
// platform with a session key (Douyin) and one without (Alipay): a login
// through one is a session on the other, a phone bound through one is
// forwarded by the other, the grace holds across them, a revocation
// through the admin API ends the session on both.
func TestPlatformsOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	for _, p := range []*platformFake{newDouyinFake(t), newAlipayFake(t)} {
		t.Run(p.name, func(t *testing.T) {
			store := func(timeout string) string {
				return redisStoreBlock("address "+srv.Addr(), "cache_ttl 200ms", "timeout "+timeout)
			}
			a := p.start(t, store("1s"))
			a.load(globalOptions() + p.site(store("1s"), a.upstream) + otherHost(p.site(store("1001ms"), a.upstream)))
			b := a.on("http://127.0.0.1:9080")

			tok := a.login("alice")
			if st, h := b.upstreamHeaders(tok); st != 200 || h.Get(p.header("OpenID")) != p.openID("alice") {
				t.Fatalf("B: %d %v", st, h)
			}
			var enc, iv string
			if p.seal != nil {
				var err error
				if enc, iv, err = p.seal("alice", map[string]any{"n": 1}); err != nil {
					t.Fatal(err)
				}
			}
			body, number := p.phoneBody(t, "alice")
			b.login("alice:2") // a rotation through B
			if r := a.postJSON("/wechat/phone", tok, body); r.status != 200 {
				t.Fatalf("phone through A: %d %s", r.status, r.raw)
			}
			if p.seal != nil {
				if r := b.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}); r.status != 200 {
					t.Fatalf("grace through B: %d %s", r.status, r.raw)
				}
			}
			gatewaytest.Eventually(t, 2*time.Second, "B forwards the phone", func() bool {
				_, h := b.upstreamHeaders(tok)
				return h.Get(p.header("Phone")) == number
			})
			if st, _ := adminDo(t, http.MethodDelete, "/wechat_auth/users/"+p.openID("alice")+"?app_id="+p.appID); st != 200 {
				t.Fatalf("revoke: %d", st)
			}
			gatewaytest.Eventually(t, 2*time.Second, "B refuses the revoked token", func() bool {
				st, _ := b.upstreamHeaders(tok)
				return st == 401
			})
		})
	}
}
