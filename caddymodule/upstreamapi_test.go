package caddymodule

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// withUpstreamAPI loads one app's two sites: the mini program's on
// localhost:9080 (extra inside its wechat_auth) and the upstream API on
// 127.0.0.1:9080 (serve upstream, same app id and store). It returns the
// app as reached through each.
func withUpstreamAPI(t *testing.T, extra string) (mini, up *testApp) {
	t.Helper()
	a := newApp(t)
	a.load(globalOptions() + a.site(extra) + otherHost(a.site("serve upstream\n\t\t"+extra)))
	return a, a.on("http://127.0.0.1:9080")
}

// userStateSignature is WeChat's user-state signature, computed here
// apart from the code under test: hex HMAC-SHA256 keyed with the session
// key's base64 text.
func userStateSignature(key, data string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// sign asks the upstream API for the signature of data for user.
func (a *testApp) sign(user, data string) response {
	a.t.Helper()
	return a.postJSON("/wechat/signature", "", map[string]string{"openid": a.fake.OpenID(user), "data": data})
}

// wantSignature checks a 200 signature answer against the fake's key.
func wantSignature(t *testing.T, a *testApp, r response, user, data string) {
	t.Helper()
	key := a.fake.SessionKey(user)
	if r.status != http.StatusOK || r.body["signature"] != userStateSignature(key, data) || r.body["sig_method"] != "hmac_sha256" {
		t.Fatalf("signature: %d %s, want the HMAC of the fake's key", r.status, r.raw)
	}
	if strings.Contains(r.raw, key) {
		t.Fatalf("the session key left the gateway: %s", r.raw)
	}
}

// A signature is the HMAC of the user's current key; the key check is
// asked of WeChat once for two signatures within the minute, and
// check_session always asks.
func TestUpstreamSignature(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	mini.login("alice")
	data := `{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","outTradeNo":"T1"}`
	wantSignature(t, up, up.sign("alice", data), "alice", data)
	wantSignature(t, up, up.sign("alice", "other data"), "alice", "other data")
	if n := up.fake.Calls(wechattest.APICheckSession); n != 1 {
		t.Fatalf("checksession calls for two signatures = %d, want 1 (cached)", n)
	}
	r := up.postJSON("/wechat/check_session", "", map[string]string{"openid": up.fake.OpenID("alice")})
	if r.status != 200 || r.raw != `{"valid":true}` {
		t.Fatalf("check_session: %d %s", r.status, r.raw)
	}
	if n := up.fake.Calls(wechattest.APICheckSession); n != 2 {
		t.Fatalf("checksession calls after check_session = %d, want 2 (never cached)", n)
	}
}

// A key WeChat replaced behind the gateway's back answers 409 until the
// mini program logs in again; check_session says so too, and drops the
// cached check, so the next signature is refused at once.
func TestUpstreamRotatedKey(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	mini.login("bob")
	up.fake.RotateSessionKey("bob")
	expectError(t, up.sign("bob", "x"), http.StatusConflict, "session_key_invalid")
	mini.login("bob:2")
	wantSignature(t, up, up.sign("bob", "x"), "bob", "x")

	// Cached as valid, then rotated: check_session asks WeChat.
	up.fake.RotateSessionKey("bob")
	r := up.postJSON("/wechat/check_session", "", map[string]string{"openid": up.fake.OpenID("bob")})
	if r.status != 200 || r.raw != `{"valid":false}` {
		t.Fatalf("check_session of a rotated key: %d %s", r.status, r.raw)
	}
	expectError(t, up.sign("bob", "x"), http.StatusConflict, "session_key_invalid")
	mini.login("bob:3")
	wantSignature(t, up, up.sign("bob", "x"), "bob", "x")
}

// A check that failed (or found the key invalid) is not cached: the next
// signature asks WeChat again. Failures answer as the error table says.
func TestUpstreamFailedCheckIsNotCached(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	mini.login("cara")
	for i, c := range []struct {
		name   string
		fail   func()
		status int
		code   string
	}{
		{"rate limited", func() { up.fake.FailNext(wechattest.APICheckSession, 45011, 1) }, 429, "rate_limited"},
		{"invalid signature", func() { up.fake.FailNext(wechattest.APICheckSession, 87009, 1) }, 409, "session_key_invalid"},
		{"html", func() { up.fake.RespondNext(wechattest.APICheckSession, 1, 502, "text/html", "<html></html>") }, 502, "wechat_error"},
		{"busy", func() { up.fake.FailNext(wechattest.APICheckSession, -1, 2) }, 503, "wechat_unavailable"},
	} {
		before := up.fake.Calls(wechattest.APICheckSession)
		c.fail()
		expectError(t, up.sign("cara", "x"), c.status, c.code)
		wantSignature(t, up, up.sign("cara", "x"), "cara", "x")
		if n := up.fake.Calls(wechattest.APICheckSession) - before; n < 2 {
			t.Fatalf("%s: %d checksession calls, want the failed one and a new one", c.name, n)
		}
		// The next one is cached again: flush it by a rotation and a login.
		up.fake.RotateSessionKey("cara")
		mini.login(fmt.Sprint("cara:", i))
	}
}

// No live session for the openid is 404 unknown_user; bad requests are
// 400, 405, 415.
func TestUpstreamBadRequests(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	expectError(t, up.sign("nobody", "x"), 404, "unknown_user")
	expectError(t, up.postJSON("/wechat/check_session", "", map[string]string{"openid": up.fake.OpenID("nobody")}), 404, "unknown_user")
	tok := mini.login("dora")
	if r := mini.do(http.MethodPost, "/wechat/logout", tok, "", nil); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	expectError(t, up.sign("dora", "x"), 404, "unknown_user")

	mini.login("dora:2")
	openid := up.fake.OpenID("dora")
	for name, body := range map[string]any{
		"no data":      map[string]string{"openid": openid},
		"empty data":   map[string]string{"openid": openid, "data": ""},
		"data number":  map[string]any{"openid": openid, "data": 5},
		"no openid":    map[string]string{"data": "x"},
		"bad openid":   map[string]string{"openid": "o x}{", "data": "x"},
		"long openid":  map[string]string{"openid": strings.Repeat("o", 129), "data": "x"},
		"openid array": map[string]any{"openid": []string{openid}, "data": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			expectError(t, up.postJSON("/wechat/signature", "", body), 400, "invalid_request")
		})
	}
	expectError(t, up.postJSON("/wechat/check_session", "", map[string]string{}), 400, "invalid_request")
	expectError(t, up.do(http.MethodGet, "/wechat/signature", "", "", nil), 405, "method_not_allowed")
	expectError(t, up.do(http.MethodPost, "/wechat/signature", "", "text/plain", strings.NewReader(`{}`)), 415, "unsupported_media_type")
	expectError(t, up.do(http.MethodPost, "/wechat/check_session", "", "application/json", strings.NewReader(strings.Repeat(" ", 17<<10)+"{}")), 413, "body_too_large")
	if n := up.fake.Calls(wechattest.APICheckSession); n != 0 {
		t.Fatalf("bad requests made %d checksession calls", n)
	}
}

// The upstream API's site serves nothing else: no login, no session, no
// pass-through, whatever the token; the mini program's site has no
// signature endpoint (it is a path like any other, passed through).
func TestUpstreamSiteServesOnlyTheUpstreamAPI(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	tok := mini.login("erin")
	for _, c := range []struct{ method, path string }{
		{"POST", "/wechat/login"}, {"GET", "/wechat/session"}, {"POST", "/wechat/logout"},
		{"POST", "/wechat/phone"}, {"POST", "/wechat/decrypt"}, {"GET", "/api/profile"},
		{"GET", "/"}, {"POST", "/wechat/signature/x"},
	} {
		r := up.do(c.method, c.path, tok, "application/json", strings.NewReader(`{"code":"erin:2"}`))
		expectError(t, r, 404, "not_found")
		if strings.Contains(r.raw, "headers") {
			t.Fatalf("%s %s reached the upstream: %s", c.method, c.path, r.raw)
		}
	}
	if n := up.fake.Calls(wechattest.APICode2Session); n != 1 {
		t.Fatalf("code2Session calls = %d: the upstream site logged someone in", n)
	}
	// The mini program's site: no token, 401; with one, passed through.
	expectError(t, mini.postJSON("/wechat/signature", "", map[string]string{"openid": mini.fake.OpenID("erin"), "data": "x"}), 401, "unauthenticated")
	r := mini.postJSON("/wechat/signature", tok, map[string]string{"openid": mini.fake.OpenID("erin"), "data": "x"})
	if r.status != 200 || r.body["path"] != "/wechat/signature" || r.body["signature"] != nil {
		t.Fatalf("the mini program's site answered a signature: %d %s", r.status, r.raw)
	}
	if n := up.fake.Calls(wechattest.APICheckSession); n != 0 {
		t.Fatalf("checksession calls = %d", n)
	}
}

// Metrics count the upstream API by endpoint and result, with no openid.
func TestUpstreamMetrics(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	mini.login("fay")
	up.sign("fay", "x")
	up.sign("nobody", "x")
	up.postJSON("/wechat/check_session", "", map[string]string{"openid": up.fake.OpenID("fay")})
	up.do(http.MethodGet, "/nope", "", "", nil)
	_, body := adminDo(t, "GET", "/metrics")
	app := `app_id="` + up.appID + `"`
	for _, want := range []string{
		`caddy_wechat_auth_upstream_requests_total{` + app + `,endpoint="signature",platform="wechat",result="ok"} 1`,
		`caddy_wechat_auth_upstream_requests_total{` + app + `,endpoint="signature",platform="wechat",result="unknown_user"} 1`,
		`caddy_wechat_auth_upstream_requests_total{` + app + `,endpoint="check_session",platform="wechat",result="valid"} 1`,
		`caddy_wechat_auth_upstream_requests_total{` + app + `,endpoint="other",platform="wechat",result="not_found"} 1`,
		`caddy_wechat_auth_api_requests_total{api="checksession",` + app + `,platform="wechat",result="ok"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, up.fake.OpenID("fay")) {
		t.Errorf("metrics hold an openid")
	}
}

func TestCaddyfileServe(t *testing.T) {
	adapt := func(serve string) (string, error) {
		cfg := "http://localhost {\n\twechat_auth {\n\t\tapp_id wx1234567890abcdef\n\t\tapp_secret s\n\t\t" + serve + "\n\t}\n}\n"
		js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
		return string(js), err
	}
	for _, c := range []struct{ serve, want string }{
		{"serve upstream", `"serve":"upstream"`},
		{"serve miniprogram", `"serve":"miniprogram"`},
	} {
		js, err := adapt(c.serve)
		if err != nil || !strings.Contains(js, c.want) {
			t.Fatalf("%s: %v %s", c.serve, err, js)
		}
	}
	for _, bad := range []string{"serve", "serve upstream extra", "serve api"} {
		if _, err := adapt(bad); err == nil || !strings.Contains(err.Error(), "serve") {
			t.Fatalf("%s: err = %v", bad, err)
		}
	}
}

// Two gateways on one Redis: the mini program's in this process, the
// upstream API in another. A login on A is signed for on B, with the key
// of A's newest login at once; once the user's last session ended on A,
// B answers unknown_user.
func TestUpstreamAPIOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	a := newApp(t)
	a.load(globalOptions() + a.site(redisStoreBlock("address "+srv.Addr())))
	b := startGatewayProcess(t, a, "serve upstream\n\t\t"+redisStoreBlock("address "+srv.Addr(), "cache_ttl 5s"))

	first := a.login("gil")
	wantSignature(t, b, b.sign("gil", "pay"), "gil", "pay")
	second := a.login("gil:2") // a new key
	wantSignature(t, b, b.sign("gil", "pay"), "gil", "pay")
	if n := a.fake.Calls(wechattest.APICheckSession); n != 2 {
		t.Fatalf("checksession calls = %d, want one per key", n)
	}
	expectError(t, b.sign("nobody", "pay"), 404, "unknown_user")

	for _, tok := range []string{first, second} {
		if r := a.do(http.MethodPost, "/wechat/logout", tok, "", nil); r.status != 204 {
			t.Fatalf("logout: %d", r.status)
		}
	}
	expectError(t, b.sign("gil", "pay"), 404, "unknown_user")
}

// The upstream API's log lines (and the admin reset's) hold no session
// key and no signature, whatever WeChat answers.
func TestUpstreamLogsHoldNoSecrets(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	a := newApp(t)
	a.load(strings.Replace(globalOptions(), "skip_install_trust", "skip_install_trust\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel INFO\n\t}", 1) +
		a.site("") + otherHost(a.site("serve upstream")))
	up := a.on("http://127.0.0.1:9080")
	a.login("lou")
	keys := []string{a.fake.SessionKey("lou")}
	var sigs []string
	sign := func() {
		if s, _ := up.sign("lou", "pay").body["signature"].(string); s != "" {
			sigs = append(sigs, s)
		}
	}
	sign()
	a.fake.FailNext(wechattest.APICheckSession, 45011, 1)
	up.postJSON("/wechat/check_session", "", map[string]string{"openid": a.fake.OpenID("lou")})
	a.fake.RespondNext(wechattest.APICheckSession, 1, 500, "text/html", "<html>"+testSecret+"</html>")
	up.postJSON("/wechat/check_session", "", map[string]string{"openid": a.fake.OpenID("lou")})
	adminDo(t, http.MethodPost, "/wechat_auth/users/"+a.fake.OpenID("lou")+"/reset_session_key?app_id="+a.appID)
	keys = append(keys, a.fake.SessionKey("lou"))
	sign()
	a.fake.RotateSessionKey("lou")
	up.postJSON("/wechat/check_session", "", map[string]string{"openid": a.fake.OpenID("lou")})
	sign()

	var logs []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		logs, _ = os.ReadFile(logFile)
		if bytes.Contains(logs, []byte(`"session key reset"`)) && bytes.Contains(logs, []byte(`"result":"session_key_invalid"`)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(sigs) != 2 || !bytes.Contains(logs, []byte(`"user-state signature"`)) || !bytes.Contains(logs, []byte(`"session key reset"`)) {
		t.Fatalf("%d signatures; expected the upstream API's lines in the log:\n%s", len(sigs), logs)
	}
	for _, secret := range append(append(keys, sigs...), testSecret) {
		if i := bytes.Index(logs, []byte(secret)); i >= 0 {
			t.Errorf("the log holds a secret: %s", logs[max(0, i-300):min(len(logs), i+100)])
		}
	}
}
