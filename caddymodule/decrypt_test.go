package caddymodule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

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

// An openId in the open data that is not a string never matches the
// caller: the answer is watermark_mismatch, whatever its type.
func TestDecryptOpenIDNotAString(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("wes")
	for _, v := range []any{5, nil, true, map[string]any{"x": 1}, []any{a.fake.OpenID("wes")}} {
		enc, iv, err := a.fake.Seal("wes", map[string]any{"openId": v, "nickName": "x"})
		if err != nil {
			t.Fatal(err)
		}
		expectError(t, a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv}), 400, "watermark_mismatch")
	}
}

// /decrypt answers the object it checked, re-encoded (compact, strings
// as decoded, numbers with their text), not the plaintext as sealed; a
// plaintext that repeats a key anywhere, however spelled, is 400
// decrypt_failed.
func TestDecryptAnswersTheCheckedObject(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("hana")
	me, other := a.fake.OpenID("hana"), a.fake.OpenID("someone-else")
	wm := fmt.Sprintf(`{"appid":%q,"timestamp":%d}`, a.appID, time.Now().Unix())
	post := func(plain string) response {
		t.Helper()
		enc, iv, err := wechattest.SealWithKey(a.fake.SessionKey("hana"), []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		return a.postJSON("/wechat/decrypt", tok, map[string]string{"encryptedData": enc, "iv": iv})
	}
	r := post(" {\n \"openId\" : \"" + me + "\", \"nickName\": \"a\\u003cb\", \"n\": 1.50,\n \"watermark\": " + wm + " } ")
	want := `{"openId":"` + me + `","nickName":"a<b","n":1.50,"watermark":` + wm + `}`
	if r.status != 200 || r.raw != want {
		t.Fatalf("decrypt answered\n%s\nwant the re-encoding\n%s", r.raw, want)
	}
	for name, plain := range map[string]string{
		"openId twice":        `{"openId":"` + other + `","openId":"` + me + `","watermark":` + wm + `}`,
		"escaped spelling":    `{"openId":"` + other + `","open\u0049d":"` + me + `","watermark":` + wm + `}`,
		"other case":          `{"openid":"` + other + `","openId":"` + me + `","watermark":` + wm + `}`,
		"nested":              `{"openId":"` + me + `","a":{"b":[{"c":1,"c":2}]},"watermark":` + wm + `}`,
		"watermark twice":     `{"openId":"` + me + `","watermark":{"appid":"wx00000000000000ff"},"watermark":` + wm + `}`,
		"watermark key twice": `{"openId":"` + me + `","watermark":{"appid":"wx00000000000000ff","appid":"` + a.appID + `","timestamp":1}}`,
	} {
		t.Run(name, func(t *testing.T) { expectError(t, post(plain), 400, "decrypt_failed") })
	}
}
