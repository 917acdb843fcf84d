package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

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

// TestWeChatFaultTable drives the phone-code path (which needs an access
// token) and the login path through WeChat's failure modes; each gets the
// spec's status and the gateway keeps serving.
func TestWeChatFaultTable(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("quinn")
	cases := []struct {
		name   string
		setup  func()
		status int
		code   string
	}{
		{"40001 storm", func() { a.fake.FailNext(wechattest.APIPhoneNumber, 40001, 2) }, 502, "wechat_error"},
		{"token endpoint html", func() {
			a.fake.RevokeTokens()
			a.fake.RespondNext(wechattest.APIStableToken, 1, 502, "text/html", "<html>bad gateway</html>")
		}, 502, "wechat_error"},
		{"token endpoint bad secret", func() {
			a.fake.RevokeTokens()
			a.fake.FailNext(wechattest.APIStableToken, 40125, 3)
		}, 502, "wechat_error"},
		{"phone slow", func() { a.fake.SetDelay(wechattest.APIPhoneNumber, 5*time.Second) }, 504, "wechat_timeout"},
		{"phone truncated", func() {
			a.fake.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", `{"errcode":0,"phone_info":{"phoneNumber":"1`)
		}, 502, "wechat_error"},
		{"phone rate limited", func() { a.fake.FailNext(wechattest.APIPhoneNumber, 45011, 1) }, 429, "rate_limited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := a.fake.Calls(wechattest.APIStableToken)
			c.setup()
			defer func() {
				for _, api := range []wechattest.API{wechattest.APIPhoneNumber, wechattest.APIStableToken} {
					a.fake.SetDelay(api, 0)
					a.fake.FailNext(api, 0, 0)
					a.fake.RespondNext(api, 0, 0, "", "")
				}
			}()
			expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"code": "quinn"}), c.status, c.code)
			if n := a.fake.Calls(wechattest.APIStableToken) - before; n > 3 {
				t.Errorf("%d stable_token calls for one request: refreshes must be bounded", n)
			}
			// The gateway still serves.
			if st, _ := a.upstreamHeaders(tok); st != 200 {
				t.Fatalf("pass-through after %s: %d", c.name, st)
			}
		})
	}
	// And WeChat recovering heals everything.
	r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "quinn:ok"})
	if r.status != 200 {
		t.Fatalf("after the faults: %d %s", r.status, r.raw)
	}
}

// A phone code sent twice is invalid_code whose message tells the user to
// tap the phone button again (not to call wx.login, as a refused login
// code's message does).
func TestUsedPhoneCodeSaysTapAgain(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("wes")
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
}

// A phone code goes to WeChat with the caller's openid: a code made for
// another user is refused (403 code_not_for_user, as the fake answers
// WeChat's binding check) and binds nothing; its owner can still use it.
func TestPhoneCodeOfAnotherUser(t *testing.T) {
	a := startGateway(t, "")
	a.fake.SetPhone("bob", "13800009999", "86")
	alice := a.login("alice")
	expectError(t, a.postJSON("/wechat/phone", alice, map[string]string{"code": "bob"}), 403, "code_not_for_user")
	if st, h := a.upstreamHeaders(alice); st != 200 || h.Get("X-Wechat-Phone") != "" {
		t.Fatalf("alice after posting bob's code: %d %v", st, h)
	}
	if s := a.do(http.MethodGet, "/wechat/session", alice, "", nil); s.body["has_phone"] != false {
		t.Fatalf("alice's session: %s", s.raw)
	}
	bob := a.login("bob")
	if r := a.postJSON("/wechat/phone", bob, map[string]string{"code": "bob"}); r.status != 200 || r.body["purePhoneNumber"] != "13800009999" {
		t.Fatalf("bob's own code: %d %s", r.status, r.raw)
	}
}

// The code form's answer must be watermarked for this app: another app's
// watermark is 400 watermark_mismatch and binds nothing.
func TestPhoneCodeWatermark(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("carl")
	a.fake.SetPhoneWatermarkAppID("wx00000000000000ff")
	expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"code": "carl"}), 400, "watermark_mismatch")
	if s := a.do(http.MethodGet, "/wechat/session", tok, "", nil); s.body["has_phone"] != false {
		t.Fatalf("bound despite the watermark: %s", s.raw)
	}
	a.fake.SetPhoneWatermarkAppID("")
	if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "carl:2"}); r.status != 200 {
		t.Fatalf("with our watermark: %d %s", r.status, r.raw)
	}
}

// The legacy form refuses a payload that repeats a key, as /decrypt does:
// 400 decrypt_failed, nothing bound.
func TestPhoneLegacyDuplicateKey(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("dina")
	wm := fmt.Sprintf(`"watermark":{"appid":%q,"timestamp":%d}`, a.appID, time.Now().Unix())
	for _, plain := range []string{
		`{"phoneNumber":"13800001111","purePhoneNumber":"13800001111","purePhoneNumber":"13900002222","countryCode":"86",` + wm + `}`,
		`{"phoneNumber":"13800001111","purePhoneNumber":"13800001111","countryCode":"86",` + wm + `,"watermark":{"appid":"wx00000000000000ff"}}`,
		`{"phoneNumber":"13800001111","purePhone\u004eumber":"13800001111","purePhoneNumber":"1","countryCode":"86",` + wm + `}`,
	} {
		enc, iv, err := wechattest.SealWithKey(a.fake.SessionKey("dina"), []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "decrypt_failed")
	}
	if s := a.do(http.MethodGet, "/wechat/session", tok, "", nil); s.body["has_phone"] != false {
		t.Fatalf("bound from a payload with a repeated key: %s", s.raw)
	}
}
