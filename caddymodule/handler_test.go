package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// The in-process Caddy of caddytest listens here; only this package starts
// it, and its tests run one after another.
const (
	gatewayBase = "http://localhost:9080"
	testSecret  = "test-app-secret-must-never-leak-0123456789"
)

var appSeq atomic.Int64

// testApp is one WeChat app (a fake WeChat server and a unique app id)
// behind the in-process Caddy.
type testApp struct {
	t        *testing.T
	tester   *caddytest.Tester
	fake     *wechattest.Server
	appID    string
	upstream string // URL of the echoing upstream
	client   *http.Client
	base     string // default gatewayBase
}

// newApp makes a fresh app: its own app id, a fake WeChat that knows it,
// and an echoing upstream. Nothing is loaded into Caddy yet: see site and
// load.
func newApp(t *testing.T) *testApp {
	t.Helper()
	appID := newAppID()
	fake := wechattest.NewServer(appID, testSecret)
	t.Cleanup(fake.Close)
	return &testApp{
		t:        t,
		tester:   caddytest.NewTester(t),
		fake:     fake,
		appID:    appID,
		upstream: echoUpstream(t).URL,
		client:   &http.Client{Timeout: 10 * time.Second},
	}
}

// site is the app's gateway site on localhost:9080; extra goes inside the
// wechat_auth block.
func (a *testApp) site(extra string) string {
	return gatewaySite(a.appID, a.fake.URL, extra, a.upstream)
}

// load (re)loads the in-process Caddy with cfg.
func (a *testApp) load(cfg string) { a.tester.InitServer(cfg, "caddyfile") }

// on returns the same app reached through another base URL.
func (a *testApp) on(base string) *testApp {
	b := *a
	b.base = base
	return &b
}

// otherHost moves a gateway site from localhost:9080 to 127.0.0.1:9080, so
// that two sites of one config can be told apart.
func otherHost(site string) string {
	return strings.Replace(site, "http://localhost:9080", "http://127.0.0.1:9080", 1)
}

// newAppID gives every test its own app, so that the sessions the memory
// store keeps across config loads never leak from one test to the next.
func newAppID() string { return fmt.Sprintf("wx%016x", 0x7e57<<32|appSeq.Add(1)) }

// echoUpstream answers with the request headers it received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func globalOptions() string {
	return `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ms
	skip_install_trust
}
`
}

// startGateway loads a config with one gateway site for a fresh app, in
// front of an echoing upstream. extra goes inside the wechat_auth block.
func startGateway(t *testing.T, extra string) *testApp {
	t.Helper()
	a := newApp(t)
	a.load(globalOptions() + a.site(extra))
	return a
}

func gatewaySite(appID, apiBase, extra, upstream string) string {
	return fmt.Sprintf(`
http://localhost:9080 {
	wechat_auth {
		app_id %s
		app_secret %s
		api_base %s
		timeout 2s
		%s
	}
	request_header X-Placeholder-User {http.auth.user.id}
	request_header X-Placeholder-Phone {http.auth.user.phone}
	request_header X-Placeholder-AppID {http.auth.user.appid}
	reverse_proxy %s
}
`, appID, testSecret, apiBase, extra, strings.TrimPrefix(upstream, "http://"))
}

// response is a decoded answer of the gateway.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a *testApp) do(method, path, token, contentType string, body io.Reader, headers ...string) response {
	a.t.Helper()
	base := a.base
	if base == "" {
		base = gatewayBase
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

func (a *testApp) postJSON(path, token string, v any) response {
	a.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.do(http.MethodPost, path, token, "application/json", bytes.NewReader(b))
}

// login logs user in with a fresh code and returns the token.
func (a *testApp) login(code string) string {
	a.t.Helper()
	r := a.postJSON("/wechat/login", "", map[string]string{"code": code})
	if r.status != http.StatusOK {
		a.t.Fatalf("login %q: %d %s", code, r.status, r.raw)
	}
	tok, _ := r.body["token"].(string)
	if len(tok) != tokenLength {
		a.t.Fatalf("login %q: bad token %q", code, tok)
	}
	return tok
}

// upstreamHeaders calls the upstream through the gateway and returns the
// headers the upstream received.
func (a *testApp) upstreamHeaders(token string, headers ...string) (int, http.Header) {
	a.t.Helper()
	r := a.do(http.MethodGet, "/api/profile", token, "", nil, headers...)
	if r.status != http.StatusOK {
		return r.status, nil
	}
	h := http.Header{}
	hm, _ := r.body["headers"].(map[string]any)
	for k, vs := range hm {
		for _, v := range vs.([]any) {
			h.Add(k, v.(string))
		}
	}
	return r.status, h
}

func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
	if got, _ := r.body["error"].(string); got != code {
		t.Fatalf("error = %q, want %q (body %s)", got, code, r.raw)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Fatalf("error without message: %s", r.raw)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error Content-Type = %q", r.header.Get("Content-Type"))
	}
	if strings.Contains(r.raw, testSecret) {
		t.Fatalf("the app secret leaked into an answer: %s", r.raw)
	}
}

func TestLoginAndPassThrough(t *testing.T) {
	a := startGateway(t, "")
	a.fake.SetUnionID("alice", "union-alice")

	r := a.postJSON("/wechat/login", "", map[string]string{"code": "alice"})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if r.body["openid"] != a.fake.OpenID("alice") || r.body["unionid"] != "union-alice" || r.body["has_phone"] != false {
		t.Fatalf("login answer: %s", r.raw)
	}
	if ei, _ := r.body["expires_in"].(float64); ei < 719*3600 || ei > 720*3600 {
		t.Fatalf("expires_in = %v, want about 720h", r.body["expires_in"])
	}
	if strings.Contains(r.raw, a.fake.SessionKey("alice")) || strings.Contains(r.raw, "session_key") {
		t.Fatalf("login answer leaks the session key: %s", r.raw)
	}
	tok := r.body["token"].(string)

	status, h := a.upstreamHeaders(tok)
	if status != 200 {
		t.Fatalf("pass-through: %d", status)
	}
	want := map[string]string{
		"X-Wechat-Openid":     a.fake.OpenID("alice"),
		"X-Wechat-Unionid":    "union-alice",
		"X-Wechat-Appid":      a.appID,
		"X-Placeholder-User":  a.fake.OpenID("alice"),
		"X-Placeholder-Appid": a.appID,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("upstream %s = %q, want %q", k, got, v)
		}
	}
	if h.Get("Authorization") != "" {
		t.Errorf("Authorization reached the upstream")
	}
	if h.Get("X-Wechat-Phone") != "" {
		t.Errorf("phone header without a bound phone")
	}

	s := a.do(http.MethodGet, "/wechat/session", tok, "", nil)
	if s.status != 200 || s.body["openid"] != a.fake.OpenID("alice") || s.body["has_phone"] != false {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}

	// Logout kills the token.
	lo := a.do(http.MethodPost, "/wechat/logout", tok, "", nil)
	if lo.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", lo.status, lo.raw)
	}
	expectError(t, a.do(http.MethodGet, "/api/x", tok, "", nil), 401, "unauthenticated")
	expectError(t, a.do(http.MethodGet, "/wechat/session", tok, "", nil), 401, "unauthenticated")
}

func TestUnauthenticated(t *testing.T) {
	a := startGateway(t, "")
	r := a.do(http.MethodGet, "/api/x", "", "", nil)
	expectError(t, r, 401, "unauthenticated")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	good := a.login("alice")
	for name, auth := range map[string]string{
		"unknown token":      "Bearer " + strings.Repeat("A", tokenLength),
		"short token":        "Bearer abc",
		"long token":         "Bearer " + good + "A",
		"bad alphabet":       "Bearer " + good[:tokenLength-1] + "!",
		"basic scheme":       "Basic " + good,
		"no token":           "Bearer ",
		"token of other app": "Bearer " + strings.Repeat("B", tokenLength),
	} {
		r := a.do(http.MethodGet, "/api/x", "", "", nil, "Authorization", auth)
		expectError(t, r, 401, "unauthenticated")
		if name != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: WWW-Authenticate = %q", name, r.header.Get("WWW-Authenticate"))
		}
	}
	// Case of the scheme does not matter.
	if st, _ := a.upstreamHeaders("", "Authorization", "bearer "+good); st != 200 {
		t.Fatalf("lower-case bearer: %d", st)
	}
}

func TestIdentityHeaderStripping(t *testing.T) {
	for _, mode := range []string{"required", "optional"} {
		t.Run(mode, func(t *testing.T) {
			a := startGateway(t, "mode "+mode)
			tok := a.login("bob")
			forged := [][2]string{
				{"X-WeChat-OpenID", "forged"},
				{"x-wechat-openid", "forged"},
				{"X_WeChat_OpenID", "forged"},
				{"x_wechat_openid", "forged"},
				{"X-WECHAT-UNIONID", "forged"},
				{"x_wechat-phone", "forged"},
				{"X-WeChat-Country_Code", "forged"},
				{"x-wechat-appid", "forged"},
			}
			var headers []string
			for _, f := range forged {
				headers = append(headers, f[0], f[1])
			}
			// Repeated headers: every copy must go.
			headers = append(headers, "X-WeChat-OpenID", "forged2", "X-WeChat-OpenID", "forged3")

			check := func(h http.Header, wantOpenID string) {
				t.Helper()
				for k, vs := range h {
					for _, v := range vs {
						if strings.HasPrefix(v, "forged") {
							t.Errorf("forged header %s: %s reached the upstream", k, v)
						}
					}
				}
				if got := h.Values("X-Wechat-Openid"); wantOpenID == "" && len(got) != 0 || wantOpenID != "" && (len(got) != 1 || got[0] != wantOpenID) {
					t.Errorf("upstream openid = %q, want %q", got, wantOpenID)
				}
			}
			// Authenticated.
			st, h := a.upstreamHeaders(tok, headers...)
			if st != 200 {
				t.Fatalf("authenticated: %d", st)
			}
			check(h, a.fake.OpenID("bob"))

			// Anonymous: stripped too (optional), or refused (required).
			st, h = a.upstreamHeaders("", headers...)
			if mode == "optional" {
				if st != 200 {
					t.Fatalf("anonymous: %d", st)
				}
				check(h, "")
			} else if st != 401 {
				t.Fatalf("anonymous in required mode: %d", st)
			}
		})
	}
}

func TestOptionalMode(t *testing.T) {
	a := startGateway(t, "mode optional")
	st, h := a.upstreamHeaders("")
	if st != 200 || h.Get("X-Wechat-Openid") != "" {
		t.Fatalf("anonymous: %d %v", st, h)
	}
	// A token that is present but invalid is still a 401.
	expectError(t, a.do(http.MethodGet, "/api/x", strings.Repeat("x", tokenLength), "", nil), 401, "unauthenticated")
	tok := a.login("carol")
	if st, h := a.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") != a.fake.OpenID("carol") {
		t.Fatalf("authenticated: %d %v", st, h)
	}
}

func TestPhoneBothForms(t *testing.T) {
	a := startGateway(t, "require_phone")
	a.fake.SetPhone("dave", "13800001111", "86")
	tok := a.login("dave")

	// require_phone: refused until bound; the endpoints still work.
	expectError(t, a.do(http.MethodGet, "/api/x", tok, "", nil), 403, "phone_required")

	r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "dave"})
	if r.status != 200 || r.body["purePhoneNumber"] != "13800001111" || r.body["countryCode"] != "86" || r.body["phoneNumber"] == "" {
		t.Fatalf("phone (code form): %d %s", r.status, r.raw)
	}
	st, h := a.upstreamHeaders(tok)
	if st != 200 || h.Get("X-Wechat-Phone") != "13800001111" || h.Get("X-Wechat-Country-Code") != "86" || h.Get("X-Placeholder-Phone") != "13800001111" {
		t.Fatalf("after binding: %d %v", st, h)
	}
	s := a.do(http.MethodGet, "/wechat/session", tok, "", nil)
	if s.body["has_phone"] != true {
		t.Fatalf("session after binding: %s", s.raw)
	}

	// Legacy form, sealed with the user's current session key.
	a.fake.SetPhone("erin", "13900002222", "86")
	tok2 := a.login("erin")
	enc, iv, err := a.fake.SealPhone("erin")
	if err != nil {
		t.Fatal(err)
	}
	r = a.postJSON("/wechat/phone", tok2, map[string]string{"encryptedData": enc, "iv": iv})
	if r.status != 200 || r.body["purePhoneNumber"] != "13900002222" || r.body["countryCode"] != "86" {
		t.Fatalf("phone (legacy form): %d %s", r.status, r.raw)
	}
	if st, h := a.upstreamHeaders(tok2); st != 200 || h.Get("X-Wechat-Phone") != "13900002222" {
		t.Fatalf("after legacy binding: %d %v", st, h)
	}

	// A new login keeps the bound phone and says so.
	r = a.postJSON("/wechat/login", "", map[string]string{"code": "erin:2"})
	if r.status != 200 || r.body["has_phone"] != true {
		t.Fatalf("re-login: %s", r.raw)
	}

	// Bad inputs.
	expectError(t, a.postJSON("/wechat/phone", tok2, map[string]string{}), 400, "invalid_request")
	expectError(t, a.postJSON("/wechat/phone", tok2, map[string]string{"encryptedData": enc}), 400, "invalid_request")
	expectError(t, a.postJSON("/wechat/phone", tok2, map[string]string{"encryptedData": "%%%", "iv": iv}), 400, "invalid_request")
	expectError(t, a.postJSON("/wechat/phone", tok2, map[string]string{"code": "dave"}), 401, "invalid_code") // used
	expectError(t, a.postJSON("/wechat/phone", "", map[string]string{"code": "x"}), 401, "unauthenticated")
}

// TestSessionKeyGrace is WeChat's getPhoneNumber pitfall, solved on the
// server: the mini program holds data sealed with alice's key, then logs
// in again (the key rotates). With either of her tokens the data still
// opens, for session_key_grace; after it, and for data two rotations old,
// it is 400 decrypt_failed. Nothing in the answer tells which key opened
// it; the log line and the metrics do.
func TestSessionKeyGrace(t *testing.T) {
	phone := func(a *testApp, tok, enc, iv string) response {
		return a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc, "iv": iv})
	}

	t.Run("previous key opens within the grace", func(t *testing.T) {
		a := startGateway(t, "session_key_grace 3s")
		a.fake.SetPhone("alice", "13800001111", "86")
		tok1 := a.login("alice")
		enc, iv, err := a.fake.SealPhone("alice") // sealed with her current key
		if err != nil {
			t.Fatal(err)
		}
		fresh := phone(a, tok1, enc, iv) // what an answer with the newest key looks like
		tok2 := a.login("alice:2")       // rotates the key
		for _, tok := range []string{tok1, tok2} {
			r := phone(a, tok, enc, iv)
			if r.status != 200 || r.body["purePhoneNumber"] != "13800001111" {
				t.Fatalf("data sealed before the re-login: %d %s", r.status, r.raw)
			}
			if r.raw != fresh.raw {
				t.Fatalf("the answer differs when the previous key opened it: %s vs %s", r.raw, fresh.raw)
			}
		}
		// /decrypt too.
		encU, ivU, err := a.fake.Seal("alice", map[string]any{"nickName": "A"})
		if err != nil {
			t.Fatal(err)
		}
		a.login("alice:3")
		if r := a.postJSON("/wechat/decrypt", tok1, map[string]string{"encryptedData": encU, "iv": ivU}); r.status != 200 || r.body["nickName"] != "A" {
			t.Fatalf("decrypt with the previous key: %d %s", r.status, r.raw)
		}
		_, metrics := adminDo(t, "GET", "/metrics")
		for _, want := range []string{
			`caddy_wechat_auth_decryptions_total{app_id="` + a.appID + `",endpoint="phone",result="previous_key"} 2`,
			`caddy_wechat_auth_decryptions_total{app_id="` + a.appID + `",endpoint="decrypt",result="previous_key"} 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// After the grace, the previous key is gone.
		decrypt := func() response {
			return a.postJSON("/wechat/decrypt", tok2, map[string]string{"encryptedData": encU, "iv": ivU})
		}
		storetest.Eventually(t, 10*time.Second, "decrypt_failed after the grace", func() bool { return decrypt().status == 400 })
		expectError(t, decrypt(), 400, "decrypt_failed")
	})

	t.Run("two rotations old is refused", func(t *testing.T) {
		a := startGateway(t, "") // the default grace, 5m
		tok := a.login("bob")
		enc, iv, err := a.fake.SealPhone("bob")
		if err != nil {
			t.Fatal(err)
		}
		a.login("bob:2")
		a.login("bob:3")
		expectError(t, phone(a, tok, enc, iv), 400, "decrypt_failed")
		// The newest key always works, for every token.
		enc, iv, _ = a.fake.SealPhone("bob")
		if r := phone(a, tok, enc, iv); r.status != 200 {
			t.Fatalf("newest key: %d %s", r.status, r.raw)
		}
	})

	t.Run("off", func(t *testing.T) {
		a := startGateway(t, "session_key_grace off")
		tok := a.login("carol")
		enc, iv, _ := a.fake.SealPhone("carol")
		a.login("carol:2")
		expectError(t, phone(a, tok, enc, iv), 400, "decrypt_failed")
	})
}

func TestDecrypt(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("gina")
	enc, iv, err := a.fake.Seal("gina", map[string]any{"stepInfoList": []any{map[string]any{"timestamp": 1, "step": 100}}})
	if err != nil {
		t.Fatal(err)
	}
	r := a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv})
	if r.status != 200 || r.body["stepInfoList"] == nil || r.body["watermark"] == nil {
		t.Fatalf("decrypt: %d %s", r.status, r.raw)
	}

	// openId of another user.
	enc, iv, _ = a.fake.Seal("gina", map[string]any{"openId": a.fake.OpenID("someone-else"), "nickName": "x"})
	expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "watermark_mismatch")
	// openId of the caller.
	enc, iv, _ = a.fake.Seal("gina", map[string]any{"openId": a.fake.OpenID("gina"), "nickName": "x"})
	if r := a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}); r.status != 200 {
		t.Fatalf("own openId: %d %s", r.status, r.raw)
	}

	// Sealed for another app: a fake of another app id, same user name,
	// sealed with gina's key from our fake by hand is not possible, so use
	// a watermark override instead.
	enc, iv, _ = a.fake.Seal("gina", map[string]any{"watermark": map[string]any{"appid": "wxsomeoneelse", "timestamp": time.Now().Unix()}})
	expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "watermark_mismatch")

	// Malformed inputs of every shape: 400, never a crash.
	sixteen := "AAAAAAAAAAAAAAAAAAAAAA=="
	for name, body := range map[string]map[string]string{
		"missing iv":         {"encryptedData": enc},
		"bad base64":         {"encryptedData": "not base64!", "iv": sixteen},
		"short iv":           {"encryptedData": enc, "iv": "AAAA"},
		"ciphertext not x16": {"encryptedData": "AAAA", "iv": sixteen},
		"empty ciphertext":   {"encryptedData": "", "iv": sixteen},
	} {
		r := a.postJSON("/wechat/decrypt", tok, body)
		if r.status != 400 || (r.body["error"] != "invalid_request" && r.body["error"] != "decrypt_failed") {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": strings.Repeat("A", 43) + "=", "iv": sixteen}), 400, "decrypt_failed")
}

func TestBadRequests(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("hank")
	big := `{"code":"` + strings.Repeat("a", 16<<10) + `"}`
	cases := []struct {
		name, method, path, ctype, body, token string
		status                                 int
		code                                   string
	}{
		{"login GET", "GET", "/wechat/login", "", "", "", 405, "method_not_allowed"},
		{"session POST", "POST", "/wechat/session", "application/json", "{}", tok, 405, "method_not_allowed"},
		{"logout GET", "GET", "/wechat/logout", "", "", tok, 405, "method_not_allowed"},
		{"no content type", "POST", "/wechat/login", "", `{"code":"x"}`, "", 415, "unsupported_media_type"},
		{"form content type", "POST", "/wechat/login", "application/x-www-form-urlencoded", "code=x", "", 415, "unsupported_media_type"},
		{"too large", "POST", "/wechat/login", "application/json", big, "", 413, "body_too_large"},
		{"not json", "POST", "/wechat/login", "application/json", "code=x", "", 400, "invalid_request"},
		{"empty body", "POST", "/wechat/login", "application/json", "", "", 400, "invalid_request"},
		{"array", "POST", "/wechat/login", "application/json", `["x"]`, "", 400, "invalid_request"},
		{"wrong type", "POST", "/wechat/login", "application/json", `{"code":42}`, "", 400, "invalid_request"},
		{"missing code", "POST", "/wechat/login", "application/json", `{}`, "", 400, "invalid_request"},
		{"trailing data", "POST", "/wechat/login", "application/json", `{"code":"x"} {}`, "", 400, "invalid_request"},
		{"control chars", "POST", "/wechat/login", "application/json", `{"code":"a\nb"}`, "", 400, "invalid_request"},
		{"deep nesting", "POST", "/wechat/login", "application/json", `{"code":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, "", 400, "invalid_request"},
		{"phone wrong types", "POST", "/wechat/phone", "application/json", `{"encryptedData":1,"iv":2}`, tok, 400, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := a.do(c.method, c.path, c.token, c.ctype, body)
			expectError(t, r, c.status, c.code)
			if c.status == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	// 16 KiB + 1, with a Content-Length and chunked (no length given).
	pad1 := 16<<10 + 1 - len(`{"code":"x","pad":""}`)
	over := `{"code":"x","pad":"` + strings.Repeat("a", pad1) + `"}`
	expectError(t, a.do("POST", "/wechat/login", "", "application/json", strings.NewReader(over)), 413, "body_too_large")
	expectError(t, a.do("POST", "/wechat/login", "", "application/json", io.MultiReader(strings.NewReader(over))), 413, "body_too_large")
	// Exactly 16 KiB is accepted (and fails on the code only).
	pad := 16<<10 - len(`{"code":"x","pad":""}`)
	exact := `{"code":"x","pad":"` + strings.Repeat("a", pad) + `"}`
	r := a.do("POST", "/wechat/login", "", "application/json", strings.NewReader(exact))
	if r.status == 413 {
		t.Fatalf("16 KiB exactly was refused")
	}
	if a.fake.Calls(wechattest.APICode2Session) != 2 { // hank, and the 16 KiB one
		t.Fatalf("bad requests reached WeChat: %d calls", a.fake.Calls(wechattest.APICode2Session))
	}
}

func TestWeChatFailures(t *testing.T) {
	a := startGateway(t, "")
	cases := []struct {
		name   string
		setup  func()
		code   string
		status int
		errc   string
	}{
		{"invalid code", func() { a.fake.FailNext(wechattest.APICode2Session, 40029, 1) }, "u1", 401, "invalid_code"},
		{"code used", func() { a.fake.FailNext(wechattest.APICode2Session, 40163, 1) }, "u2", 401, "invalid_code"},
		{"blocked", func() { a.fake.FailNext(wechattest.APICode2Session, 40226, 1) }, "u3", 403, "user_blocked"},
		{"rate limited", func() { a.fake.FailNext(wechattest.APICode2Session, 45011, 1) }, "u4", 429, "rate_limited"},
		{"busy twice", func() { a.fake.FailNext(wechattest.APICode2Session, -1, 2) }, "u5", 503, "wechat_unavailable"},
		{"unknown errcode", func() { a.fake.FailNext(wechattest.APICode2Session, 99999, 1) }, "u6", 502, "wechat_error"},
		{"bad secret", func() { a.fake.FailNext(wechattest.APICode2Session, 40125, 1) }, "u7", 502, "wechat_error"},
		{"html", func() {
			a.fake.RespondNext(wechattest.APICode2Session, 1, 502, "text/html", "<html><body>Bad Gateway</body></html>")
		}, "u8", 502, "wechat_error"},
		{"truncated json", func() {
			a.fake.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"openid":"o12`)
		}, "u9", 502, "wechat_error"},
		{"slow", func() { a.fake.SetDelay(wechattest.APICode2Session, 5*time.Second) }, "u10", 504, "wechat_timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			defer a.fake.SetDelay(wechattest.APICode2Session, 0)
			r := a.postJSON("/wechat/login", "", map[string]string{"code": c.code})
			expectError(t, r, c.status, c.errc)
			if c.status == 429 && r.header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
	// -1 once is retried and succeeds.
	a.fake.FailNext(wechattest.APICode2Session, -1, 1)
	a.login("busy-once")
}

func TestWeChatDownGatewayUp(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("ivan")
	a.fake.Close()
	expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "ivan:2"}), 503, "wechat_unavailable")
	expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"code": "ivan"}), 503, "wechat_unavailable")
	if st, h := a.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") == "" {
		t.Fatalf("pass-through during a WeChat outage: %d", st)
	}
}

func TestRetriedCodeOneCall(t *testing.T) {
	a := startGateway(t, "")
	first := a.postJSON("/wechat/login", "", map[string]string{"code": "judy"})
	again := a.postJSON("/wechat/login", "", map[string]string{"code": "judy"})
	if first.status != 200 || again.status != 200 || first.body["token"] != again.body["token"] {
		t.Fatalf("retry got another session: %s / %s", first.raw, again.raw)
	}
	if n := a.fake.Calls(wechattest.APICode2Session); n != 1 {
		t.Fatalf("code2Session calls = %d, want 1", n)
	}

	// Concurrent identical posts make one call.
	a.fake.SetDelay(wechattest.APICode2Session, 150*time.Millisecond)
	defer a.fake.SetDelay(wechattest.APICode2Session, 0)
	var wg sync.WaitGroup
	tokens := make([]any, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.postJSON("/wechat/login", "", map[string]string{"code": "judy:2"})
			tokens[i] = r.body["token"]
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok == nil || tok != tokens[0] {
			t.Fatalf("concurrent retries got different answers: %v", tokens)
		}
	}
	if n := a.fake.Calls(wechattest.APICode2Session); n != 2 {
		t.Fatalf("code2Session calls = %d, want 2", n)
	}
	// After a logout the code does not bring the session back.
	a.do(http.MethodPost, "/wechat/logout", tokens[0].(string), "", nil)
	r := a.postJSON("/wechat/login", "", map[string]string{"code": "judy:2"})
	expectError(t, r, 401, "invalid_code")
}

func TestReloadKeepsSessionsAndAppsApart(t *testing.T) {
	a, b := newApp(t), newApp(t)
	two := func(extra string) string {
		return globalOptions() + a.site(extra) + otherHost(b.site(""))
	}
	a.load(two(""))
	tokA := a.login("kim")
	bBase := "http://127.0.0.1:9080"
	get := func(base, tok string) int {
		req, _ := http.NewRequest("GET", base+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get(gatewayBase, tokA) != 200 {
		t.Fatal("token of app A refused by app A")
	}
	if st := get(bBase, tokA); st != 401 {
		t.Fatalf("token of app A on app B: %d, want 401", st)
	}

	// Reload with a changed config: same app ids and store, so sessions live on.
	a.load(two("session_ttl 24h"))
	if st := get(gatewayBase, tokA); st != 200 {
		t.Fatalf("after reload: %d, want 200", st)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	a := newApp(t)
	fake := a.fake
	fake.SetPhone("leo", "13812341111", "86")
	a.load(strings.Replace(globalOptions(), "skip_install_trust", "skip_install_trust\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel INFO\n\t}", 1) + a.site(""))

	tok := a.login("leo")
	sessionKey := fake.SessionKey("leo")
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo"})
	enc, iv, _ := fake.SealPhone("leo")
	a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc, "iv": iv})
	a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc[:len(enc)-8] + "AAAAAAA=", "iv": iv})
	// A code of its own for each: a code WeChat refused is remembered,
	// and sent again would not reach WeChat.
	for i, code := range []int{40029, 40226, 45011, -1, 40125, 99999} {
		fake.FailNext(wechattest.APICode2Session, code, 2)
		a.postJSON("/wechat/login", "", map[string]string{"code": fmt.Sprintf("leo:x%d", i)})
	}
	// The phone code path's failures carry a rid too.
	fake.FailNext(wechattest.APIPhoneNumber, 40029, 1)
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo:p"})
	fake.RespondNext(wechattest.APICode2Session, 2, 500, "text/html", "<html>"+testSecret+"</html>")
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:y"})
	fake.RevokeTokens()
	fake.FailNext(wechattest.APIStableToken, 40013, 3)
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo"})
	fake.SetDelay(wechattest.APICode2Session, 5*time.Second)
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:z"})
	fake.SetDelay(wechattest.APICode2Session, 0)
	fake.Close()
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:w"})
	a.do("GET", "/api/x", tok, "", nil)
	a.do("POST", "/wechat/logout", tok, "", nil)
	a.do("GET", "/api/x", tok, "", nil)

	// Let the logger flush.
	var logs []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		logs, _ = os.ReadFile(logFile)
		if bytes.Contains(logs, []byte(`"phone bound"`)) && bytes.Contains(logs, []byte(`"login failed"`)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !bytes.Contains(logs, []byte(`"phone bound"`)) || !bytes.Contains(logs, []byte(`138****1111`)) {
		t.Fatalf("expected a masked phone binding in the log:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"app secret":  testSecret,
		"token":       tok,
		"session key": sessionKey,
		"full phone":  "13812341111",
	} {
		if i := bytes.Index(logs, []byte(secret)); secret != "" && i >= 0 {
			t.Errorf("the log holds the %s: %s", name, logs[max(0, i-300):min(len(logs), i+100)])
		}
	}
	if !bytes.Contains(logs, []byte(`"errcode":40226`)) {
		t.Errorf("login failures should log WeChat's errcode")
	}
	// WeChat appends a request id to every errmsg ("invalid code, rid:
	// 6523a4b1-..."): it is WeChat's, and no log line carries it, while
	// the error text without it still does.
	if i := bytes.Index(logs, []byte("rid:")); i >= 0 {
		t.Errorf("the log holds a WeChat rid: %s", logs[max(0, i-300):min(len(logs), i+100)])
	}
	if rid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}`).Find(logs); rid != nil {
		t.Errorf("the log holds a WeChat rid: %s", rid)
	}
	for _, want := range []string{`"error":"wechat: jscode2session: errcode 40029: invalid code"`, `"error":"wechat: getuserphonenumber: errcode 40029: invalid code"`} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

func TestMaxDataAge(t *testing.T) {
	a := startGateway(t, "max_data_age 1m")
	tok := a.login("vera")
	old := time.Now().Add(-10 * time.Minute).Unix()
	enc, iv, err := a.fake.Seal("vera", map[string]any{"x": 1, "watermark": map[string]any{"appid": a.appID, "timestamp": old}})
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "watermark_mismatch")
	enc, iv, _ = a.fake.Seal("vera", map[string]any{"x": 1})
	if r := a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}); r.status != 200 {
		t.Fatalf("fresh data: %d %s", r.status, r.raw)
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
