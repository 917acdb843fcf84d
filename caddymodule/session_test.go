package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// The longest session_ttl allowed (10 years) works end
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
