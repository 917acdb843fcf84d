package caddymodule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// twoGateways runs two wechat_auth gateways of one app on one Redis inside
// the in-process Caddy: A on localhost:9080, B on 127.0.0.1:9080. Their
// store settings differ in timeout only, which gives each its own Redis
// client and its own local cache, as two Caddy processes would have.
type twoGateways struct {
	A, B          *testApp
	stop, restart func()
}

func startTwoGateways(t *testing.T) *twoGateways {
	t.Helper()
	// Persistence on, as in production: a restarted Redis keeps sessions.
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	addr, stop, restart := srv.Addr(), srv.Stop, srv.Restart
	store := func(timeout string) string {
		return fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\tcache_ttl 200ms\n\t\t\ttimeout %s\n\t\t}", addr, timeout)
	}
	a := newApp(t)
	a.load(globalOptions() + a.site(store("1s")) + otherHost(a.site(store("1001ms"))))
	return &twoGateways{A: a, B: a.on("http://127.0.0.1:9080"), stop: stop, restart: restart}
}

func TestTwoGatewaysShareSessions(t *testing.T) {
	g := startTwoGateways(t)
	g.A.fake.SetPhone("sam", "13700001234", "86")

	// Login on A works on B.
	tok := g.A.login("sam")
	if st, h := g.B.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") != g.A.fake.OpenID("sam") {
		t.Fatalf("B does not know A's session: %d", st)
	}
	// A retried code lands on B: same session, no second WeChat call.
	first := g.A.postJSON("/wechat/login", "", map[string]string{"code": "sam:2"})
	again := g.B.postJSON("/wechat/login", "", map[string]string{"code": "sam:2"})
	if first.status != 200 || again.status != 200 || first.body["token"] != again.body["token"] {
		t.Fatalf("retry on B got another session: %s / %s", first.raw, again.raw)
	}
	if n := g.A.fake.Calls(wechattest.APICode2Session); n != 2 {
		t.Fatalf("code2Session calls = %d, want 2", n)
	}
	// Phone bound on A is forwarded by B.
	if r := g.A.postJSON("/wechat/phone", tok, map[string]string{"code": "sam"}); r.status != 200 {
		t.Fatalf("phone on A: %d %s", r.status, r.raw)
	}
	storetest.Eventually(t, 3*time.Second, "B forwards the phone bound on A", func() bool {
		_, h := g.B.upstreamHeaders(tok)
		return h.Get("X-Wechat-Phone") == "13700001234"
	})
	// A re-login on B rotates the key for A too: data sealed for the new
	// key decrypts through A, and so does data sealed for the key before
	// it (the session key grace, kept in Redis), until two rotations.
	old, oldIV, err := g.A.fake.SealPhone("sam")
	if err != nil {
		t.Fatal(err)
	}
	g.B.login("sam:3")
	enc, iv, err := g.A.fake.SealPhone("sam")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ enc, iv string }{{enc, iv}, {old, oldIV}} {
		if r := g.A.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": c.enc, "iv": c.iv}); r.status != 200 {
			t.Fatalf("A decrypting after the key rotated on B: %d %s", r.status, r.raw)
		}
	}
	g.B.login("sam:4")
	expectError(t, g.A.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": old, "iv": oldIV}), 400, "decrypt_failed")
	// Logout on B kills the token on A within cache_ttl.
	if r := g.B.do("POST", "/wechat/logout", tok, "", nil); r.status != 204 {
		t.Fatalf("logout on B: %d", r.status)
	}
	storetest.Eventually(t, 3*time.Second, "A refuses the token logged out on B", func() bool {
		st, _ := g.A.upstreamHeaders(tok)
		return st == 401
	})
}

func TestRedisOutageIsNever401(t *testing.T) {
	g := startTwoGateways(t)
	tok := g.A.login("tess")
	g.stop()

	// Past the local cache, every request needs Redis: 503, never 401.
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		r := g.A.do("GET", "/api/x", tok, "", nil)
		expectError(t, r, 503, "store_unavailable")
	}
	expectError(t, g.B.do("GET", "/wechat/session", tok, "", nil), 503, "store_unavailable")
	expectError(t, g.A.postJSON("/wechat/login", "", map[string]string{"code": "tess:2"}), 503, "store_unavailable")
	// An unknown token cannot be told apart from a known one while the
	// store is down: 503 too, not 401.
	expectError(t, g.A.do("GET", "/api/x", strings.Repeat("A", tokenLength), "", nil), 503, "store_unavailable")

	g.restart()
	storetest.Eventually(t, 3*time.Second, "recovery after Redis returns", func() bool {
		st, _ := g.A.upstreamHeaders(tok)
		return st == 200
	})
	if r := g.B.postJSON("/wechat/login", "", map[string]string{"code": "tess:3"}); r.status != 200 {
		t.Fatalf("login after recovery: %d %s", r.status, r.raw)
	}
}
