package wechattest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// sign is written out here rather than taken from the package under test.
func sign(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

func userState(t *testing.T, srv *wechattest.Server, path, tok, openid, sig, method string) answer {
	t.Helper()
	q := url.Values{"access_token": {tok}, "openid": {openid}, "signature": {sig}, "sig_method": {method}}
	return do(t, srv, "GET", path+"?"+q.Encode(), nil)
}

func TestCheckSession(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	tok, _ := token(t, srv, false).body["access_token"].(string)
	login(t, srv, "alice")
	key, id := srv.SessionKey("alice"), srv.OpenID("alice")
	const path = "/wxa/checksession"

	if a := userState(t, srv, path, tok, id, sign(key), "hmac_sha256"); errcode(a) != 0 || a.body["errmsg"] != "ok" {
		t.Errorf("valid: %s", a.raw)
	}
	for name, tt := range map[string]struct {
		tok, openid, sig, method string
		want                     int
	}{
		"no token":        {"", id, sign(key), "hmac_sha256", 41001},
		"bad token":       {"nope", id, sign(key), "hmac_sha256", 40001},
		"no openid":       {tok, "", sign(key), "hmac_sha256", 41009},
		"unknown openid":  {tok, srv.OpenID("bob"), sign(key), "hmac_sha256", 40003},
		"sig_method":      {tok, id, sign(key), "md5", 87008},
		"signature":       {tok, id, sign("AAAAAAAAAAAAAAAAAAAAAA=="), "hmac_sha256", 87009},
		"one char off":    {tok, id, "X" + sign(key)[1:], "hmac_sha256", 87009},
		"empty signature": {tok, id, "", "hmac_sha256", 87009},
	} {
		if a := userState(t, srv, path, tt.tok, tt.openid, tt.sig, tt.method); errcode(a) != tt.want {
			t.Errorf("%s: %s, want %d", name, a.raw, tt.want)
		}
	}
	if a := do(t, srv, "POST", path, nil); errcode(a) != 43001 {
		t.Errorf("POST: %s", a.raw)
	}

	// Rotated behind the server's back: the old key no longer signs.
	fresh := srv.RotateSessionKey("alice")
	if fresh == key || srv.SessionKey("alice") != fresh {
		t.Errorf("RotateSessionKey gave %q", fresh)
	}
	if a := userState(t, srv, path, tok, id, sign(key), "hmac_sha256"); errcode(a) != 87009 {
		t.Errorf("rotated-out key: %s", a.raw)
	}
	if a := userState(t, srv, path, tok, id, sign(fresh), "hmac_sha256"); errcode(a) != 0 {
		t.Errorf("rotated-in key: %s", a.raw)
	}
	if got := srv.Calls(wechattest.APICheckSession); got != 12 {
		t.Errorf("Calls = %d", got)
	}
}

func TestResetUserSessionKey(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	tok, _ := token(t, srv, false).body["access_token"].(string)
	login(t, srv, "alice")
	key, id := srv.SessionKey("alice"), srv.OpenID("alice")
	const path = "/wxa/resetusersessionkey"

	a := userState(t, srv, path, tok, id, sign(key), "hmac_sha256")
	fresh, _ := a.body["session_key"].(string)
	if errcode(a) != 0 || a.body["openid"] != id || fresh == "" || fresh == key || srv.SessionKey("alice") != fresh {
		t.Fatalf("reset: %s", a.raw)
	}
	if a := userState(t, srv, path, tok, id, sign(key), "hmac_sha256"); errcode(a) != 87009 {
		t.Errorf("reset with the old key: %s", a.raw)
	}
	if a := userState(t, srv, "/wxa/checksession", tok, id, sign(fresh), "hmac_sha256"); errcode(a) != 0 {
		t.Errorf("the new key does not check: %s", a.raw)
	}
	if a := userState(t, srv, path, tok, id, sign(fresh), "HMAC_SHA256"); errcode(a) != 87008 {
		t.Errorf("sig_method: %s", a.raw)
	}
}

func TestPhoneBoundToUser(t *testing.T) {
	srv := wechattest.NewServer(appID, secret)
	defer srv.Close()
	tok, _ := token(t, srv, false).body["access_token"].(string)
	post := func(code, openid string) answer {
		return do(t, srv, "POST", "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(tok),
			map[string]string{"code": code, "openid": openid})
	}
	if a := post("bob", srv.OpenID("alice")); errcode(a) != 40003 {
		t.Errorf("bob's code with alice's openid: %s", a.raw)
	}
	// The refusal did not use up bob's code.
	if a := post("bob", srv.OpenID("bob")); errcode(a) != 0 {
		t.Errorf("bob's code with his openid: %s", a.raw)
	}
	// A used code is 40163 whoever posts it.
	if a := post("bob", srv.OpenID("alice")); errcode(a) != 40163 {
		t.Errorf("used code with another openid: %s", a.raw)
	}
	// Without an openid, as before.
	if a := post("carol", ""); errcode(a) != 0 {
		t.Errorf("no openid: %s", a.raw)
	}
	// Malformed codes are still 40029 whatever the openid.
	if a := post("bad", srv.OpenID("alice")); errcode(a) != 40029 {
		t.Errorf("bad code: %s", a.raw)
	}

	srv.SetPhoneWatermarkAppID("wxother")
	a := post("dave", srv.OpenID("dave"))
	info, _ := a.body["phone_info"].(map[string]any)
	if wm, _ := info["watermark"].(map[string]any); wm["appid"] != "wxother" {
		t.Errorf("SetPhoneWatermarkAppID: %s", a.raw)
	}
	srv.SetPhoneWatermarkAppID("")
	a = post("dave:2", srv.OpenID("dave"))
	info, _ = a.body["phone_info"].(map[string]any)
	if wm, _ := info["watermark"].(map[string]any); wm["appid"] != appID {
		t.Errorf("watermark restored: %s", a.raw)
	}
}
