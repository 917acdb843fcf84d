package wechattest_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

const (
	appID  = "wxfake0000000001"
	secret = "fake-secret-0123456789"
)

type answer struct {
	status int
	ctype  string
	body   map[string]any
	raw    string
}

func do(t *testing.T, srv *wechattest.Server, method, path string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func login(t *testing.T, srv *wechattest.Server, code string) answer {
	t.Helper()
	q := url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	return do(t, srv, "GET", "/sns/jscode2session?"+q.Encode(), nil)
}

func errcode(a answer) int {
	f, _ := a.body["errcode"].(float64)
	return int(f)
}

func TestLogin(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()

	a := login(t, srv, "alice")
	if a.status != 200 || a.ctype != "text/plain" {
		t.Errorf("status %d, Content-Type %q; want 200 text/plain", a.status, a.ctype)
	}
	openid, _ := a.body["openid"].(string)
	key1, _ := a.body["session_key"].(string)
	if openid != srv.OpenID("alice") || len(openid) != 28 || openid[0] != 'o' {
		t.Errorf("openid %q", openid)
	}
	if k, err := base64.StdEncoding.DecodeString(key1); err != nil || len(k) != 16 || key1 != srv.SessionKey("alice") {
		t.Errorf("session_key %q", key1)
	}
	if _, ok := a.body["unionid"]; ok {
		t.Errorf("unionid without SetUnionID")
	}
	if _, ok := a.body["errcode"]; ok {
		t.Errorf("success carries errcode: %s", a.raw)
	}

	a = login(t, srv, "alice:2")
	if a.body["openid"] != openid || a.body["session_key"] == key1 || srv.SessionKey("alice") == key1 {
		t.Errorf("second login: %s", a.raw)
	}
	if srv.OpenID("alice") == srv.OpenID("bob") || wechattest.New("wxother", secret).OpenID("alice") == openid {
		t.Errorf("openids collide")
	}
	if srv.SessionKey("nobody") != "" {
		t.Errorf("session key of a user who never logged in")
	}

	srv.SetUnionID("carol", "oUNION")
	if a := login(t, srv, "carol"); a.body["unionid"] != "oUNION" {
		t.Errorf("unionid: %s", a.raw)
	}

	for code, want := range map[string]int{
		"alice": 40163, "alice:2": 40163, "": 41008, "bad": 40029, "badly": 40029,
		"a b": 40029, "a\tb": 40029, ":x": 40029, strings.Repeat("x", 129): 40029,
	} {
		a := login(t, srv, code)
		if errcode(a) != want || a.ctype != "text/plain" {
			t.Errorf("code %q: %s (%s), want %d", code, a.raw, a.ctype, want)
		}
		if msg, _ := a.body["errmsg"].(string); !strings.Contains(msg, "rid: ") {
			t.Errorf("errmsg %q without rid", msg)
		}
	}

	q := url.Values{"appid": {"wxwrong"}, "secret": {secret}, "js_code": {"dave"}, "grant_type": {"authorization_code"}}
	if a := do(t, srv, "GET", "/sns/jscode2session?"+q.Encode(), nil); errcode(a) != 40013 {
		t.Errorf("wrong appid: %s", a.raw)
	}
	q.Set("appid", appID)
	q.Set("secret", "wrong")
	if a := do(t, srv, "GET", "/sns/jscode2session?"+q.Encode(), nil); errcode(a) != 40125 {
		t.Errorf("wrong secret: %s", a.raw)
	}
	// Refused calls did not use up "dave".
	if a := login(t, srv, "dave"); a.body["openid"] != srv.OpenID("dave") {
		t.Errorf("dave: %s", a.raw)
	}
	if got := srv.Calls(wechattest.APICode2Session); got != 15 {
		t.Errorf("calls = %d", got)
	}
}

func TestUserOfCode(t *testing.T) {
	for code, want := range map[string]string{"alice": "alice", "alice:2": "alice", "a:b:c": "a", "": "", "bad": "", " x": "", ":": ""} {
		got, ok := wechattest.UserOfCode(code)
		if got != want || ok != (want != "") {
			t.Errorf("UserOfCode(%q) = %q, %v", code, got, ok)
		}
	}
}

func token(t *testing.T, srv *wechattest.Server, force bool) answer {
	t.Helper()
	return do(t, srv, "POST", "/cgi-bin/stable_token", map[string]any{
		"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": force,
	})
}

func phone(t *testing.T, srv *wechattest.Server, tok, code string) answer {
	t.Helper()
	return do(t, srv, "POST", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok), map[string]string{"code": code})
}

func TestTokens(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	srv.SetClock(func() time.Time { return now })

	a := token(t, srv, false)
	tok1, _ := a.body["access_token"].(string)
	if tok1 == "" || a.body["expires_in"] != 7200.0 || !strings.HasPrefix(a.ctype, "application/json") {
		t.Fatalf("stable_token: %s (%s)", a.raw, a.ctype)
	}
	now = now.Add(100 * time.Second)
	if a := token(t, srv, false); a.body["access_token"] != tok1 || a.body["expires_in"] != 7100.0 {
		t.Errorf("plain refresh should hand back the same token: %s", a.raw)
	}
	if a := phone(t, srv, tok1, "alice"); errcode(a) != 0 {
		t.Errorf("phone: %s", a.raw)
	}

	srv.RevokeTokens()
	if a := phone(t, srv, tok1, "alice:2"); errcode(a) != 40001 {
		t.Errorf("revoked: %s", a.raw)
	}
	tok2, _ := token(t, srv, false).body["access_token"].(string)
	if tok2 == tok1 || tok2 == "" {
		t.Errorf("no new token after revocation")
	}
	// The refused call did not use up alice:2.
	if a := phone(t, srv, tok2, "alice:2"); errcode(a) != 0 {
		t.Errorf("phone: %s", a.raw)
	}

	srv.SetStickyDeadToken(true)
	srv.RevokeTokens()
	if a := token(t, srv, false); a.body["access_token"] != tok2 {
		t.Errorf("sticky: %s", a.raw)
	}
	tok3, _ := token(t, srv, true).body["access_token"].(string)
	if tok3 == tok2 || srv.ForceRefreshes() != 1 {
		t.Errorf("force refresh: %q, %d", tok3, srv.ForceRefreshes())
	}
	if a := token(t, srv, true); errcode(a) != 0 {
		t.Errorf("second force: %s", a.raw)
	}
	if a := phone(t, srv, tok3, "x"); errcode(a) != 40001 {
		t.Errorf("a forced refresh should invalidate the previous token: %s", a.raw)
	}

	srv.SetTokenTTL(time.Minute)
	srv.RevokeTokens()
	srv.SetStickyDeadToken(false)
	a = token(t, srv, false)
	tok4, _ := a.body["access_token"].(string)
	if a.body["expires_in"] != 60.0 {
		t.Errorf("ttl: %s", a.raw)
	}
	now = now.Add(time.Minute)
	if a := phone(t, srv, tok4, "y"); errcode(a) != 42001 {
		t.Errorf("expired: %s", a.raw)
	}
	if a := phone(t, srv, "", "y"); errcode(a) != 41001 {
		t.Errorf("missing token: %s", a.raw)
	}
	if a := phone(t, srv, "nonsense", "y"); errcode(a) != 40001 {
		t.Errorf("unknown token: %s", a.raw)
	}

	for i := 0; i < 25; i++ {
		token(t, srv, true)
	}
	if a := token(t, srv, true); errcode(a) != 45009 {
		t.Errorf("force quota: %s", a.raw)
	}

	bad := do(t, srv, "POST", "/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential", "appid": appID, "secret": "x"})
	if errcode(bad) != 40125 {
		t.Errorf("wrong secret: %s", bad.raw)
	}
	if a := do(t, srv, "GET", "/cgi-bin/stable_token", nil); errcode(a) != 43002 {
		t.Errorf("GET: %s", a.raw)
	}
}

func TestPhone(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	tok, _ := token(t, srv, false).body["access_token"].(string)

	a := phone(t, srv, tok, "alice")
	if !strings.Contains(a.raw, `"countryCode":86`) {
		t.Errorf("countryCode should be a number: %s", a.raw)
	}
	info, _ := a.body["phone_info"].(map[string]any)
	pure, _ := info["purePhoneNumber"].(string)
	if len(pure) != 11 || !strings.HasPrefix(pure, "138") || info["phoneNumber"] != pure {
		t.Errorf("phone_info: %s", a.raw)
	}
	wm, _ := info["watermark"].(map[string]any)
	if wm["appid"] != appID || wm["timestamp"] == nil {
		t.Errorf("watermark: %s", a.raw)
	}
	if a := phone(t, srv, tok, "alice"); errcode(a) != 40163 {
		t.Errorf("reused: %s", a.raw)
	}

	srv.SetCountryCodeAsString(true)
	srv.SetPhone("bob", "4155550100", "1")
	a = phone(t, srv, tok, "bob")
	if !strings.Contains(a.raw, `"countryCode":"1"`) || !strings.Contains(a.raw, `"phoneNumber":"+1 4155550100"`) {
		t.Errorf("bob: %s", a.raw)
	}
}

func TestKnobs(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()

	srv.FailNext(wechattest.APICode2Session, 45011, 2)
	for range 2 {
		if a := login(t, srv, "alice"); errcode(a) != 45011 {
			t.Errorf("FailNext: %s", a.raw)
		}
	}
	if a := login(t, srv, "alice"); errcode(a) != 0 {
		t.Errorf("after FailNext, and the code is not used up: %s", a.raw)
	}

	srv.RespondNext(wechattest.APICode2Session, 1, 502, "text/html", "<html>bad gateway</html>")
	srv.FailNext(wechattest.APICode2Session, -1, 1)
	if a := login(t, srv, "x1"); a.status != 502 || a.ctype != "text/html" || a.raw != "<html>bad gateway</html>" {
		t.Errorf("RespondNext: %d %s %q", a.status, a.ctype, a.raw)
	}
	if a := login(t, srv, "x1"); errcode(a) != -1 {
		t.Errorf("FailNext after RespondNext: %s", a.raw)
	}
	srv.FailNext(wechattest.APICode2Session, -1, 0)

	if got := srv.Calls(wechattest.APICode2Session); got != 5 {
		t.Errorf("Calls = %d", got)
	}

	// A slow answer ends when its client gives up.
	srv.SetDelay(wechattest.APIStableToken, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/cgi-bin/stable_token", strings.NewReader(`{}`))
	if _, err := srv.Client().Do(req); err == nil {
		t.Errorf("no timeout")
	}
	srv.SetDelay(wechattest.APIStableToken, 0)
	// Server.Close (deferred) must not wait out the 5 s: the test's own
	// timeout would catch it.
}

func decrypt(t *testing.T, key, data, iv string) map[string]any {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	d, _ := base64.StdEncoding.DecodeString(data)
	v, _ := base64.StdEncoding.DecodeString(iv)
	b, err := aes.NewCipher(k)
	if err != nil || len(v) != 16 || len(d)%16 != 0 {
		t.Fatalf("bad sizes: key %d, iv %d, data %d", len(k), len(v), len(d))
	}
	cipher.NewCBCDecrypter(b, v).CryptBlocks(d, d)
	pad := int(d[len(d)-1])
	var m map[string]any
	if err := json.Unmarshal(d[:len(d)-pad], &m); err != nil {
		t.Fatalf("plaintext: %v", err)
	}
	return m
}

func TestSeal(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	if _, _, err := srv.Seal("alice", nil); err == nil {
		t.Errorf("Seal before login")
	}
	login(t, srv, "alice")
	payload := map[string]any{"nickName": "Alice"}
	data, iv, err := srv.Seal("alice", payload)
	if err != nil {
		t.Fatal(err)
	}
	m := decrypt(t, srv.SessionKey("alice"), data, iv)
	wm, _ := m["watermark"].(map[string]any)
	if m["nickName"] != "Alice" || wm["appid"] != appID || wm["timestamp"] == nil {
		t.Errorf("sealed %v", m)
	}
	if _, ok := payload["watermark"]; ok {
		t.Errorf("Seal modified its argument")
	}
	data, iv, _ = srv.Seal("alice", map[string]any{"watermark": map[string]any{"appid": "wxevil"}})
	if wm := decrypt(t, srv.SessionKey("alice"), data, iv)["watermark"].(map[string]any); wm["appid"] != "wxevil" {
		t.Errorf("a given watermark should be kept")
	}

	data, iv, _ = srv.SealPhone("alice")
	m = decrypt(t, srv.SessionKey("alice"), data, iv)
	if m["countryCode"] != "86" || len(m["purePhoneNumber"].(string)) != 11 {
		t.Errorf("SealPhone: %v", m)
	}
}

func TestMockEndpoints(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	if a := do(t, srv, "GET", "/_mock/", nil); a.status != 200 || !strings.Contains(a.raw, "NOT WeChat") {
		t.Errorf("help: %d %q", a.status, a.raw)
	}
	if a := do(t, srv, "GET", "/_mock/seal_phone?user=alice", nil); a.status != 409 || a.body["error"] != "no_session" {
		t.Errorf("before login: %d %s", a.status, a.raw)
	}
	login(t, srv, "alice")
	a := do(t, srv, "GET", "/_mock/seal_phone?user=alice", nil)
	data, _ := a.body["encryptedData"].(string)
	iv, _ := a.body["iv"].(string)
	if a.status != 200 || decrypt(t, srv.SessionKey("alice"), data, iv)["countryCode"] != "86" {
		t.Errorf("seal_phone: %d %s", a.status, a.raw)
	}
	a = do(t, srv, "POST", "/_mock/seal?user=alice", map[string]any{"stepInfoList": []int{1, 2}})
	data, _ = a.body["encryptedData"].(string)
	iv, _ = a.body["iv"].(string)
	if a.status != 200 || decrypt(t, srv.SessionKey("alice"), data, iv)["stepInfoList"] == nil {
		t.Errorf("seal: %d %s", a.status, a.raw)
	}
	if a := do(t, srv, "POST", "/_mock/seal?user=alice", []int{1}); a.status != 400 {
		t.Errorf("seal of an array: %d", a.status)
	}
	if a := do(t, srv, "GET", "/nope", nil); a.status != 404 {
		t.Errorf("unknown path: %d", a.status)
	}
}
