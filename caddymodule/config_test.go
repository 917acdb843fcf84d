package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
)

// validateJSON runs Caddy's own validation (load, provision, validate,
// clean up) of a config with one wechat_auth handler holding fields.
func validateJSON(t *testing.T, fields string) error {
	t.Helper()
	handler := `{"handler":"wechat_auth","app_id":"wx1234567890abcdef","app_secret":"s"` + fields + `}`
	raw := `{"apps":{"http":{"servers":{"gw":{"listen":["localhost:0"],"routes":[{"handle":[` + handler + `]}]}}}}}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// Issue 15, items 5, 6 and 12: a JSON config (no Caddyfile to check it at
// adapt) is refused by Validate with the same words.
func TestJSONConfigValidate(t *testing.T) {
	if err := validateJSON(t, `,"session_ttl":"87600h","timeout":"1m","session_key_grace":0,"body_timeout":"5m","refused_code_limit":0,"max_data_age":"720h"`); err != nil {
		t.Fatalf("a config at the edges of every range: %v", err)
	}
	for _, c := range []struct{ fields, want string }{
		{`,"session_ttl":500000`, "session_ttl must be between 1m0s and 87600h0m0s"},
		{`,"session_ttl":"876000h"`, "session_ttl must be between 1m0s and 87600h0m0s"},
		{`,"session_ttl":"-1h"`, "session_ttl must not be negative"},
		{`,"timeout":"2m"`, "timeout must be between 100ms and 1m0s"},
		{`,"timeout":"1ms"`, "timeout must be between"},
		{`,"session_key_grace":"2h"`, "session_key_grace must be between 1s and 1h0m0s, or 0 for off"},
		{`,"max_data_age":"1ms"`, "max_data_age must be between 1s and 720h0m0s, or 0 for off"},
		{`,"body_timeout":"500ms"`, "body_timeout must be between 1s and 5m0s"},
		{`,"body_timeout":"1h"`, "body_timeout must be between 1s and 5m0s"},
		{`,"refused_code_limit":-1`, "refused_code_limit must be between 0 and 100000"},
		{`,"refused_code_window":"10ms"`, "refused_code_window must be between 1s and 1h0m0s"},
		{`,"mode":"maybe"`, `mode must be "required" or "optional"`},
		{`,"path_prefix":"wechat"`, "path_prefix must be an absolute path"},
		// api_base is checked at provision, once its placeholders are
		// resolved: every WeChat call would fail with it.
		{`,"api_base":"ftp://x"`, `api_base "ftp://x" must be an absolute http:// or https:// URL`},
		{`,"api_base":"http://"`, `api_base "http://" must be an absolute`},
		{`,"api_base":"{env.WECHAT_TEST_UNSET_BASE}/x"`, `api_base "/x" must be an absolute`},
		{`,"header_openid":"X User:Id"`, `header_openid: "X User:Id" is not a valid header name`},
		{`,"header_phone":"Authorization"`, `header_phone: "Authorization" collides with Authorization`},
		{`,"header_appid":"authorization"`, `header_appid: "authorization" collides with Authorization`},
		{`,"header_unionid":"x_wechat_openid"`, `header_unionid: "x_wechat_openid" collides with header_openid`},
		{`,"header_appid":"X-Id","header_phone":"x-id"`, `collides with`},
		{`,"header_country_code":""`, ""}, // empty is the default: fine
	} {
		err := validateJSON(t, c.fields)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.fields, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.fields, err, c.want)
		}
	}
	// app_id is checked at provision (a placeholder may hide it from
	// Validate): not wx + 16 hex digits is refused.
	for _, id := range []string{"wx1", "wx1234567890abcdeg", "xx1234567890abcdef", "wx1234567890abcdef0"} {
		err := validateJSON(t, `,"app_id":"`+id+`"`)
		if err == nil || !strings.Contains(err.Error(), "is not a mini program AppID") {
			t.Errorf("app_id %q: %v", id, err)
		}
	}
	// A literal secret with braces: the error quotes none of it.
	err := validateJSON(t, `,"app_secret":"ab{cd-piece}ef"`)
	if err == nil || strings.Contains(err.Error(), "cd-piece") || !strings.Contains(err.Error(), "app_secret holds a placeholder that is not known") {
		t.Errorf("app_secret with braces: %v", err)
	}
}

// Issue 15, item 5: the longest session_ttl allowed (10 years) works end
// to end with the memory store, whose record expiry is a uint32 of unix
// seconds (good until 2106): login, phone binding, a second login and
// the admin revoke of every token all behave.
func TestLongestSessionTTL(t *testing.T) {
	a := startGateway(t, "session_ttl 87600h")
	a.fake.SetPhone("ulla", "13800003333", "86")
	r := a.postJSON("/wechat/login", "", map[string]string{"code": "ulla"})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	tok := r.body["token"].(string)
	const tenYears = 87600 * 3600
	if ei, _ := r.body["expires_in"].(float64); ei < tenYears-60 || ei > tenYears {
		t.Fatalf("expires_in = %v, want about 10 years", r.body["expires_in"])
	}
	if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "ulla"}); r.status != 200 {
		t.Fatalf("phone binding: %d %s", r.status, r.raw)
	}
	tok2 := a.login("ulla:2")
	for _, tk := range []string{tok, tok2} {
		if st, h := a.upstreamHeaders(tk); st != 200 || h.Get("X-Wechat-Phone") != "13800003333" {
			t.Fatalf("pass-through after binding: %d %v", st, h)
		}
	}
	if s := a.do(http.MethodGet, "/wechat/session", tok2, "", nil); s.status != 200 || s.body["has_phone"] != true {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}
	st, body := adminDo(t, "DELETE", "/wechat_auth/users/"+a.fake.OpenID("ulla"))
	if st != 200 || !strings.Contains(body, `"revoked":2`) {
		t.Fatalf("revoke: %d %s", st, body)
	}
	for _, tk := range []string{tok, tok2} {
		expectError(t, a.do(http.MethodGet, "/api/x", tk, "", nil), 401, "unauthenticated")
	}
}

// Issue 15, item 7: path_prefix / serves /login (never //login), and a
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

// Issue 15, item 12.
func TestSmallFixes(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("wes")

	t.Run("openId that is not a string", func(t *testing.T) {
		for _, v := range []any{5, nil, true, map[string]any{"x": 1}, []any{a.fake.OpenID("wes")}} {
			enc, iv, err := a.fake.Seal("wes", map[string]any{"openId": v, "nickName": "x"})
			if err != nil {
				t.Fatal(err)
			}
			expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "watermark_mismatch")
		}
	})
	t.Run("used phone code", func(t *testing.T) {
		a.fake.SetPhone("wes", "13800004444", "86")
		if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "wes"}); r.status != 200 {
			t.Fatalf("phone: %d %s", r.status, r.raw)
		}
		r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "wes"})
		expectError(t, r, 401, "invalid_code")
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, "tap the phone button again") || strings.Contains(msg, "wx.login") {
			t.Fatalf("message for a used phone code: %q", msg)
		}
		// A login code's refusal still says wx.login.
		r = a.postJSON("/wechat/login", "", map[string]string{"code": "bad"})
		if msg, _ := r.body["message"].(string); !strings.Contains(msg, "wx.login") {
			t.Fatalf("message for an invalid login code: %q", msg)
		}
	})
}

// Issue 15, item 12: a store failure during login is logged with the
// result the README documents, and the operation.
func TestLoginStoreFailureLogged(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	srv := redistest.Start(t)
	a := newApp(t)
	global := strings.Replace(globalOptions(), "skip_install_trust", "skip_install_trust\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel INFO\n\t}", 1)
	a.load(global + a.site(fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\ttimeout 500ms\n\t\t}", srv.Addr())))
	a.login("xena")
	srv.Stop()
	expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "xena:2"}), 503, "store_unavailable")

	var line map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		logs, _ := os.ReadFile(logFile)
		for l := range bytes.SplitSeq(logs, []byte("\n")) {
			if bytes.Contains(l, []byte(`"session store failed"`)) {
				_ = json.Unmarshal(l, &line)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if line == nil {
		t.Fatal("no \"session store failed\" line in the log")
	}
	if line["result"] != "store_unavailable" || line["operation"] == nil || line["error"] == nil {
		t.Fatalf("store failure log line: %v", line)
	}
}
