package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// The admin API's reset: WeChat makes a new key, every session of the
// user has it (the upstream API signs with it), the sessions keep their
// expiry, and neither the old key nor the one before it opens sealed data.
func TestAdminResetSessionKey(t *testing.T) {
	mini, up := withUpstreamAPI(t, "")
	tok1 := mini.login("rita")
	before := mini.fake.SessionKey("rita")
	tok2 := mini.login("rita:2")
	leaked := mini.fake.SessionKey("rita")
	openid := mini.fake.OpenID("rita")
	exp := mini.do(http.MethodGet, "/wechat/session", tok1, "", nil).body["expires_in"].(float64)

	route := "/wechat_auth/users/" + openid + "/reset_session_key?app_id=" + mini.appID
	st, body := adminDo(t, http.MethodPost, route)
	want := fmt.Sprintf(`{"openid":%q,"apps":[{"app_id":%q,"result":"reset"}]}`, openid, mini.appID)
	if st != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("reset: %d %s, want %s", st, body, want)
	}
	fresh := mini.fake.SessionKey("rita")
	if fresh == leaked || strings.Contains(body, fresh) || strings.Contains(body, leaked) {
		t.Fatalf("WeChat's key did not change, or a key is in the answer: %s", body)
	}
	if n := mini.fake.Calls(wechattest.APIResetSessionKey); n != 1 {
		t.Fatalf("resetusersessionkey calls = %d, want 1 (one store, two blocks)", n)
	}
	wantSignature(t, up, up.sign("rita", "pay"), "rita", "pay")
	for _, tok := range []string{tok1, tok2} {
		s := mini.do(http.MethodGet, "/wechat/session", tok, "", nil)
		if got, _ := s.body["expires_in"].(float64); s.status != 200 || got > exp || got < exp-5 {
			t.Fatalf("session after the reset: %d %s (expires_in was %v)", s.status, s.raw, exp)
		}
	}
	plain := fmt.Sprintf(`{"x":1,"watermark":{"appid":%q,"timestamp":%d}}`, mini.appID, time.Now().Unix())
	for _, key := range []string{leaked, before} {
		enc, iv, err := wechattest.SealWithKey(key, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		expectError(t, mini.postJSON("/wechat/decrypt", tok1, map[string]string{"encryptedData": enc, "iv": iv}), 400, "decrypt_failed")
	}
	enc, iv, _ := wechattest.SealWithKey(fresh, []byte(plain))
	if r := mini.postJSON("/wechat/decrypt", tok2, map[string]string{"encryptedData": enc, "iv": iv}); r.status != 200 {
		t.Fatalf("data sealed with the new key: %d %s", r.status, r.raw)
	}

	// A key WeChat replaced already, a user without a session, bad calls.
	mini.fake.RotateSessionKey("rita")
	if st, body := adminDo(t, http.MethodPost, route); st != 200 || !strings.Contains(body, `"result":"key_invalid"`) {
		t.Fatalf("reset of a dead key: %d %s", st, body)
	}
	nobody := "/wechat_auth/users/" + mini.fake.OpenID("nobody") + "/reset_session_key?app_id=" + mini.appID
	if st, body := adminDo(t, http.MethodPost, nobody); st != 200 || !strings.Contains(body, `"result":"no_session"`) {
		t.Fatalf("reset of an unknown user: %d %s", st, body)
	}
	mini.fake.FailNext(wechattest.APIResetSessionKey, 45011, 1)
	mini.login("rita:3")
	if st, body := adminDo(t, http.MethodPost, route); st != 429 || strings.Contains(body, testSecret) {
		t.Fatalf("reset WeChat refused: %d %s", st, body)
	}
	if st, _ := adminDo(t, http.MethodGet, route); st != 405 {
		t.Fatalf("GET on the reset route: %d", st)
	}
	if st, _ := adminDo(t, http.MethodPost, "/wechat_auth/users/a}b"+resetKeySuffix); st != 400 {
		t.Fatalf("reset of a malformed openid: %d", st)
	}
}
