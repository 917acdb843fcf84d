package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// TestPlatforms walks every platform but WeChat through the gateway:
// login, a retried code, a refused code remembered, pass-through with the
// platform's headers and every forged identity stripped, the phone bound
// (the legacy form; Alipay's signed form), the session, logout.
func TestPlatforms(t *testing.T) {
	for _, p := range platformFakes(t) {
		t.Run(p.name, func(t *testing.T) {
			a := p.start(t, "")
			r := a.postJSON("/wechat/login", "", map[string]string{"code": "alice"})
			if r.status != 200 || r.body["openid"] != p.openID("alice") {
				t.Fatalf("login: %d %s", r.status, r.raw)
			}
			tok := r.body["token"].(string)

			// A retried code: the same session, no second call.
			calls := p.calls()
			if again := a.postJSON("/wechat/login", "", map[string]string{"code": "alice"}); again.body["token"] != tok || p.calls() != calls {
				t.Fatalf("retried code: %s (calls %d, then %d)", again.raw, calls, p.calls())
			}
			// A refused code: refused again without a call.
			p.refuseNext()
			expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "carol"}), 401, codeInvalidCode)
			calls = p.calls()
			expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "carol"}), 401, codeInvalidCode)
			if p.calls() != calls {
				t.Fatalf("the refused code was sent again")
			}

			// Pass-through: our headers, nobody's forged ones.
			st, h := a.upstreamHeaders(tok,
				p.header("OpenID"), "forged", strings.ToLower(strings.ReplaceAll(p.header("AppID"), "-", "_")), "forged",
				"X-WeChat-OpenID", "forged", "X-QQ-OpenID", "forged", "X-Douyin-UnionID", "forged",
				"X-Kuaishou-Phone", "forged", "X-Baidu-AppID", "forged", "X-Alipay-OpenID", "forged")
			if st != 200 || h.Get(p.header("OpenID")) != p.openID("alice") || h.Get(p.header("AppID")) != p.appID {
				t.Fatalf("pass-through: %d %v", st, h)
			}
			for name, vs := range h {
				if strings.Contains(strings.Join(vs, ","), "forged") {
					t.Errorf("forged %s reached the upstream", name)
				}
			}
			if p.name != "wechat" && h.Get("X-WeChat-OpenID") != "" {
				t.Errorf("a %s gateway set WeChat's header", p.name)
			}

			// The phone, bound and forwarded.
			body, number := p.phoneBody(t, "alice")
			r = a.postJSON("/wechat/phone", tok, body)
			if r.status != 200 || r.body["purePhoneNumber"] != number {
				t.Fatalf("phone: %d %s", r.status, r.raw)
			}
			_, h = a.upstreamHeaders(tok)
			if h.Get(p.header("Phone")) != number || (h.Get(p.header("Country-Code")) != "") != p.hasCountryCode {
				t.Fatalf("after the phone: %v", h)
			}
			// WeChat's code form is WeChat's.
			r = a.postJSON("/wechat/phone", tok, map[string]string{"code": "alice"})
			expectError(t, r, 400, codeInvalidRequest)
			if !strings.Contains(r.body["message"].(string), "WeChat") {
				t.Errorf("code form: %s", r.raw)
			}

			if s := a.do(http.MethodGet, "/wechat/session", tok, "", nil); s.body["openid"] != p.openID("alice") || s.body["has_phone"] != true {
				t.Fatalf("session: %s", s.raw)
			}
			if r := a.do(http.MethodPost, "/wechat/logout", tok, "", nil); r.status != 204 {
				t.Fatalf("logout: %d %s", r.status, r.raw)
			}
			if st, _ := a.upstreamHeaders(tok); st != 401 {
				t.Fatalf("after logout: %d", st)
			}
		})
	}
}

// TestPlatformsGrace: on every platform with session-key sealed data, data
// sealed just before a re-login opens with the previous key, for /decrypt
// and the phone, and data two rotations old does not.
func TestPlatformsGrace(t *testing.T) {
	for _, p := range platformFakes(t) {
		if p.seal == nil {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			a := p.start(t, "")
			tok := a.login("bob")
			enc, iv, err := p.seal("bob", map[string]any{"nickName": "B"})
			if err != nil {
				t.Fatal(err)
			}
			phone, number := p.phoneBody(t, "bob")
			a.login("bob:2") // rotates the key
			if r := a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}); r.status != 200 || r.body["nickName"] != "B" {
				t.Fatalf("decrypt with the previous key: %d %s", r.status, r.raw)
			}
			if r := a.postJSON("/wechat/phone", tok, phone); r.status != 200 || r.body["purePhoneNumber"] != number {
				t.Fatalf("phone with the previous key: %d %s", r.status, r.raw)
			}
			a.login("bob:3")
			expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, codeDecryptFailed)
		})
	}
}

// TestTwoPlatformsOneUpstream: QQ and Douyin sites in one config, behind
// one upstream. Each forwards its own platform's identity, a client of
// one cannot forge the other's, and a token of one is nothing to the
// other.
func TestTwoPlatformsOneUpstream(t *testing.T) {
	qq, douyin := newQQFake(t), newDouyinFake(t)
	a := qq.start(t, "")
	upstream := a.upstream
	a.load(globalOptions() + qq.site("", upstream) + otherHost(douyin.site("", upstream)))
	d := a.on("http://127.0.0.1:9080")

	qqTok, douyinTok := a.login("alice"), d.login("alice")
	st, h := a.upstreamHeaders(qqTok, "X-Douyin-OpenID", "forged", "X-Douyin-AppID", "forged")
	if st != 200 || h.Get("X-QQ-OpenID") != qq.openID("alice") || h.Get("X-Douyin-OpenID") != "" || h.Get("X-Douyin-AppID") != "" {
		t.Fatalf("through QQ: %d %v", st, h)
	}
	st, h = d.upstreamHeaders(douyinTok, "X-QQ-OpenID", "forged", "X_QQ_Phone", "forged")
	if st != 200 || h.Get("X-Douyin-OpenID") != douyin.openID("alice") || h.Get("X-QQ-OpenID") != "" || h.Get("X-Qq-Phone") != "" {
		t.Fatalf("through Douyin: %d %v", st, h)
	}
	if st, _ := d.upstreamHeaders(qqTok); st != 401 {
		t.Fatalf("a QQ token on the Douyin site: %d", st)
	}
	if st, _ := a.upstreamHeaders(douyinTok); st != 401 {
		t.Fatalf("a Douyin token on the QQ site: %d", st)
	}
}

// TestWeChatStripsEveryPlatform: a WeChat gateway, anonymous requests
// included, removes every platform's default identity headers.
func TestWeChatStripsEveryPlatform(t *testing.T) {
	a := startGateway(t, "mode optional")
	tok := a.login("wes")
	var forged []string
	for _, prefix := range []string{"X-QQ", "X-Douyin", "X-Kuaishou", "X-Baidu", "X-Alipay"} {
		for _, field := range []string{"OpenID", "UnionID", "Phone", "Country-Code", "AppID"} {
			forged = append(forged, prefix+"-"+field, "forged", strings.ReplaceAll(prefix+"_"+field, "-", "_"), "forged")
		}
	}
	for _, token := range []string{tok, ""} {
		st, h := a.upstreamHeaders(token, forged...)
		if st != 200 {
			t.Fatalf("%d", st)
		}
		for name, vs := range h {
			if strings.Contains(strings.Join(vs, ","), "forged") {
				t.Errorf("token %v: forged %s reached the upstream", token != "", name)
			}
		}
	}
}

// TestPlatformsRefusedCodeLimit: every platform's refusals count against
// the client, and the metrics name the platform and its own code.
func TestPlatformsRefusedCodeLimit(t *testing.T) {
	// The Baidu client reports its exchanges to the observer before it
	// reads an error object out of them (platforms/baidu/session.go):
	// its refusals count as api results "ok".
	codes := map[string]string{"qq": "40029", "douyin": "40018", "kuaishou": "100200100", "baidu": "", "alipay": "40002.isv.code-invalid"}
	for _, p := range platformFakes(t) {
		t.Run(p.name, func(t *testing.T) {
			a := p.start(t, "refused_code_limit 2")
			for _, code := range []string{"x1", "x2"} {
				p.refuseNext()
				expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": code}), 401, codeInvalidCode)
			}
			calls := p.calls()
			r := a.postJSON("/wechat/login", "", map[string]string{"code": "x3"})
			expectError(t, r, 429, codeRateLimited)
			if r.header.Get("Retry-After") == "" || p.calls() != calls {
				t.Fatalf("limited: Retry-After %q, calls %d then %d", r.header.Get("Retry-After"), calls, p.calls())
			}
			_, metrics := adminDo(t, http.MethodGet, "/metrics")
			labels := `app_id="` + p.appID + `",platform="` + p.name + `"`
			wants := []string{
				`caddy_wechat_auth_logins_total{` + labels + `,result="invalid_code"} 2`,
				`caddy_wechat_auth_logins_total{` + labels + `,result="rate_limited"} 1`,
			}
			if codes[p.name] != "" {
				wants = append(wants, `,`+labels+`,result="errcode_`+codes[p.name]+`"} 2`)
			}
			for _, want := range wants {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}
