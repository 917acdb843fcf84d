package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// path_prefix / serves /login (never //login), and a
// trailing slash is the same prefix.
func TestPathPrefixSlashes(t *testing.T) {
	for _, c := range []struct{ prefix, login, session string }{
		{"/", "/login", "/session"},
		{"/wechat/", "/wechat/login", "/wechat/session"},
		{"/api/auth//", "/api/auth/login", "/api/auth/session"},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			a := startGateway(t, "path_prefix "+c.prefix)
			r := a.postJSON(c.login, "", map[string]string{"code": "vic"})
			if r.status != 200 {
				t.Fatalf("POST %s: %d %s", c.login, r.status, r.raw)
			}
			tok := r.body["token"].(string)
			if s := a.do(http.MethodGet, c.session, tok, "", nil); s.status != 200 || s.body["openid"] != a.fake.OpenID("vic") {
				t.Fatalf("GET %s: %d %s", c.session, s.status, s.raw)
			}
			// The doubled-slash path is no endpoint: a pass-through,
			// which needs a token.
			expectError(t, a.postJSON(strings.TrimSuffix(c.prefix, "/")+"//login", "", map[string]string{"code": "vic:2"}), 401, "unauthenticated")
		})
	}
}

// TestTwoMiniProgramsOneHost runs two mini programs (two app ids) behind
// one site, chosen by path, as the README shows: each has its own
// wechat_auth under handle_path, so each mini program's baseURL is the
// site plus its path, and the endpoints are /shop/wechat/login and
// /blog/wechat/login. Their sessions are kept apart.
func TestTwoMiniProgramsOneHost(t *testing.T) {
	shop, blog := newApp(t), newApp(t)
	block := func(path string, a *testApp) string {
		return fmt.Sprintf(`
	handle_path /%s/* {
		wechat_auth {
			app_id %s
			app_secret %s
			api_base %s
		}
		reverse_proxy %s
	}`, path, a.appID, testSecret, a.fake.URL, strings.TrimPrefix(a.upstream, "http://"))
	}
	shop.load(globalOptions() + "\nhttp://localhost:9080 {" + block("shop", shop) + block("blog", blog) + "\n}\n")
	shopGW, blogGW := shop.on(gatewayBase+"/shop"), blog.on(gatewayBase+"/blog")

	tokShop := shopGW.login("kim")
	tokBlog := blogGW.login("kim") // the same person in the other mini program
	for _, c := range []struct {
		gw    *testApp
		tok   string
		appID string
	}{{shopGW, tokShop, shop.appID}, {blogGW, tokBlog, blog.appID}} {
		st, h := c.gw.upstreamHeaders(c.tok)
		if st != 200 || h.Get("X-Wechat-Appid") != c.appID || h.Get("X-Wechat-Openid") != c.gw.fake.OpenID("kim") {
			t.Fatalf("%s: %d %v", c.appID, st, h)
		}
	}
	// A token of one mini program means nothing to the other.
	if st, _ := blogGW.upstreamHeaders(tokShop); st != 401 {
		t.Fatalf("shop token on blog: %d, want 401", st)
	}
	expectError(t, shopGW.do("GET", "/wechat/session", tokBlog, "", nil), 401, "unauthenticated")
	// Logging out of one leaves the other.
	if r := shopGW.do("POST", "/wechat/logout", tokShop, "", nil); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if st, _ := blogGW.upstreamHeaders(tokBlog); st != 200 {
		t.Fatalf("blog session after the shop logout: %d", st)
	}
	_, stats := adminDo(t, "GET", "/wechat_auth/stats")
	for _, id := range []string{shop.appID, blog.appID} {
		if !strings.Contains(stats, `"app_id":"`+id+`"`) {
			t.Errorf("stats lack app %s: %s", id, stats)
		}
	}
}
