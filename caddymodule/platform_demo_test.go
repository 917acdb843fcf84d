package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
	// The demo serves the platforms' fakes through the dev mock.
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock"
)

// TestPlatformsDemo adapts and runs examples/platforms/Caddyfile (on free
// ports, with this test's admin endpoint) and walks one login and one
// pass-through per platform, and Alipay's phone through its mock.
func TestPlatformsDemo(t *testing.T) {
	const file = "../examples/platforms/Caddyfile"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": file}); err != nil || len(warnings) > 0 {
		t.Fatalf("adapting the demo: %v %v", err, warnings)
	}
	cfg := string(src)
	cfg = globalOptions() + cfg[strings.Index(cfg, "}\n")+2:] // this test's admin and ports
	examples, _ := filepath.Abs("../examples/platforms")
	cfg = strings.ReplaceAll(cfg, "examples/platforms", examples)
	ports := map[string]string{}
	for _, port := range []string{"8090", "9010", "9019"} {
		ports[port] = strconv.Itoa(gatewaytest.FreePort(t))
		cfg = strings.ReplaceAll(cfg, "localhost:"+port, "localhost:"+ports[port])
	}
	a := newApp(t)
	a.load(cfg)
	a = a.on("http://localhost:" + ports["8090"])

	for _, p := range []string{"wechat", "qq", "douyin", "kuaishou", "baidu", "alipay"} {
		r := a.postJSON("/"+p+"/wechat/login", "", map[string]string{"code": "alice"})
		openid, _ := r.body["openid"].(string)
		if r.status != 200 || openid == "" {
			t.Fatalf("%s login: %d %s", p, r.status, r.raw)
		}
		tok := r.body["token"].(string)
		u := a.do(http.MethodGet, "/"+p+"/api/hello", tok, "", nil, "X-WeChat-OpenID", "forged")
		if u.status != 200 || u.body[p] != openid || u.body["authorization"] != "" {
			t.Fatalf("%s pass-through: %d %s", p, u.status, u.raw)
		}
		for name, v := range u.body {
			if name != p && v != "" && name != "phone" {
				t.Errorf("%s pass-through carried %s: %v", p, name, v)
			}
		}
		// The phone, sealed (or for Alipay signed) by the mock as the
		// walk-through in docs/platforms.md does it.
		if p == "douyin" || p == "alipay" {
			mock := a.on("http://localhost:" + ports["9010"])
			payload := mock.do(http.MethodGet, "/"+p+"/_mock/seal_phone?user=alice", "", "", nil)
			if payload.status != 200 {
				t.Fatalf("the %s mock's phone payload: %d %s", p, payload.status, payload.raw)
			}
			// As the phone button gives it, sign_type and all.
			r := a.do(http.MethodPost, "/"+p+"/wechat/phone", tok, "application/json", strings.NewReader(payload.raw))
			if r.status != 200 || r.body["purePhoneNumber"] == "" {
				t.Fatalf("%s phone: %d %s", p, r.status, r.raw)
			}
		}
	}
}
