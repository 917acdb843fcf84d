package wechat_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// The known-answer vector: made with openssl enc, see testdata/kat/README.md.
const (
	katKey = "AAECAwQFBgcICQoLDA0ODw=="
	katIV  = "8OHSw7Sllod4aVpLPC0eDw=="
)

func TestDecryptKnownAnswer(t *testing.T) {
	c := wechat.NewClient(appID, secret)
	data := readFile(t, "testdata/kat/phone.enc.b64")
	want := readFile(t, "testdata/kat/phone.json")

	raw, err := c.Decrypt(katKey, data, katIV)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != want {
		t.Errorf("plaintext = %s\nwant %s", raw, want)
	}

	p, err := c.DecryptPhone(katKey, data, katIV)
	if err != nil {
		t.Fatal(err)
	}
	if p.PhoneNumber != "13800001111" || p.PurePhoneNumber != "13800001111" || p.CountryCode != "86" ||
		p.Watermark == nil || p.Watermark.AppID != appID || p.Watermark.Timestamp != 1700000000 {
		t.Errorf("phone = %+v", p)
	}

	// Base64 that went through a query string: '+' became ' '.
	if !strings.Contains(data, "+") {
		t.Fatal("the vector should contain a '+'")
	}
	if _, err := c.Decrypt(katKey, strings.ReplaceAll(data, "+", " "), katIV); err != nil {
		t.Errorf("space-for-plus repair: %v", err)
	}

	// Another app's client refuses the same data.
	other := wechat.NewClient("wxanotherapp00000", secret)
	if _, err := other.Decrypt(katKey, data, katIV); !errors.Is(err, wechat.ErrWatermark) {
		t.Errorf("other app: err = %v, want ErrWatermark", err)
	}
}

func TestDecryptSealed(t *testing.T) {
	srv, c := newPair(t)
	s := login(t, c, "alice")

	data, iv, err := srv.Seal("alice", map[string]any{"nickName": "Alice", "stepInfoList": []any{map[string]any{"step": 100}}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		NickName     string `json:"nickName"`
		StepInfoList []struct {
			Step int `json:"step"`
		} `json:"stepInfoList"`
		Watermark wechat.Watermark `json:"watermark"`
	}
	if err := c.DecryptInto(s.SessionKey, data, iv, &got); err != nil {
		t.Fatal(err)
	}
	if got.NickName != "Alice" || len(got.StepInfoList) != 1 || got.StepInfoList[0].Step != 100 || got.Watermark.AppID != appID {
		t.Errorf("decrypted %+v", got)
	}
	var wrongType struct {
		NickName int `json:"nickName"`
	}
	if err := c.DecryptInto(s.SessionKey, data, iv, &wrongType); !errors.Is(err, wechat.ErrDecrypt) {
		t.Errorf("unfitting type: err = %v", err)
	}
	if _, err := c.DecryptPhone(s.SessionKey, data, iv); !errors.Is(err, wechat.ErrDecrypt) {
		t.Errorf("DecryptPhone of non-phone data: err = %v", err)
	}

	data, iv, err = srv.SealPhone("alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.DecryptPhone(s.SessionKey, data, iv)
	if err != nil || p.CountryCode != "86" || len(p.PurePhoneNumber) != 11 {
		t.Fatalf("DecryptPhone = %+v, %v", p, err)
	}

	// A new login rotates the key: data sealed before no longer decrypts.
	s2 := login(t, c, "alice:2")
	if _, err := c.Decrypt(s2.SessionKey, data, iv); !errors.Is(err, wechat.ErrDecrypt) {
		t.Errorf("stale data: err = %v, want ErrDecrypt", err)
	}

	if _, _, err := srv.Seal("nobody", nil); !errors.Is(err, wechattest.ErrNoSession) {
		t.Errorf("Seal for a user with no session: %v", err)
	}
}

// encrypt is AES-128-CBC of an already padded plaintext, for crafting bad
// padding. It is the test's own code, not the package's.
func encrypt(t *testing.T, key, iv []byte, padded []byte) string {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, padded)
	return base64.StdEncoding.EncodeToString(out)
}

func pkcs7(b []byte) []byte {
	n := 16 - len(b)%16
	return append(bytes.Clone(b), bytes.Repeat([]byte{byte(n)}, n)...)
}

func TestDecryptMalformed(t *testing.T) {
	c := wechat.NewClient(appID, secret)
	key := bytes.Repeat([]byte{7}, 16)
	iv := bytes.Repeat([]byte{9}, 16)
	k64 := base64.StdEncoding.EncodeToString(key)
	iv64 := base64.StdEncoding.EncodeToString(iv)
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	good := []byte(`{"watermark":{"appid":"` + appID + `","timestamp":1}}`)
	enc := func(padded []byte) string { return encrypt(t, key, iv, padded) }
	// A body of exactly 32 bytes, then the padding under test.
	body := []byte(`{"watermark":{"appid":"x"}}     `)[:32]
	withPad := func(pad []byte) string { return enc(append(bytes.Clone(body), pad...)) }
	okData := enc(pkcs7(good))

	tests := []struct {
		name          string
		key, data, iv string
		want          error
	}{
		{"key not base64", "!!!!", okData, iv64, wechat.ErrInvalidInput},
		{"key empty", "", okData, iv64, wechat.ErrInvalidInput},
		{"key 15 bytes", b64(15), okData, iv64, wechat.ErrInvalidInput},
		{"key 17 bytes", b64(17), okData, iv64, wechat.ErrInvalidInput},
		{"key 24 bytes (AES-192 would accept it)", b64(24), okData, iv64, wechat.ErrInvalidInput},
		{"key 32 bytes", b64(32), okData, iv64, wechat.ErrInvalidInput},
		{"key url-safe base64", "_-_-_-_-_-_-_-_-_-_-_w==", okData, iv64, wechat.ErrInvalidInput},
		{"iv not base64", k64, okData, "%%%", wechat.ErrInvalidInput},
		{"iv empty", k64, okData, "", wechat.ErrInvalidInput},
		{"iv 8 bytes", k64, okData, b64(8), wechat.ErrInvalidInput},
		{"iv 32 bytes", k64, okData, b64(32), wechat.ErrInvalidInput},
		{"data not base64", k64, "*", iv64, wechat.ErrInvalidInput},
		{"data empty", k64, "", iv64, wechat.ErrInvalidInput},
		{"data 15 bytes", k64, b64(15), iv64, wechat.ErrInvalidInput},
		{"data 17 bytes", k64, b64(17), iv64, wechat.ErrInvalidInput},
		{"data truncated base64", k64, okData[:len(okData)-3], iv64, wechat.ErrInvalidInput},
		{"pad 0", k64, withPad(bytes.Repeat([]byte{0}, 16)), iv64, wechat.ErrDecrypt},
		{"pad 17", k64, withPad(bytes.Repeat([]byte{17}, 16)), iv64, wechat.ErrDecrypt},
		{"pad 255", k64, withPad(bytes.Repeat([]byte{255}, 16)), iv64, wechat.ErrDecrypt},
		{"pad bytes differ", k64, withPad(append(bytes.Repeat([]byte{4}, 13), 3, 4, 4)), iv64, wechat.ErrDecrypt},
		{"pad 16 with one wrong", k64, withPad(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)), iv64, wechat.ErrDecrypt},
		{"no padding at all", k64, enc(body), iv64, wechat.ErrDecrypt},
		{"wrong key", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 16)), okData, iv64, wechat.ErrDecrypt},
		{"plaintext not JSON", k64, enc(pkcs7([]byte("hello, world"))), iv64, wechat.ErrDecrypt},
		{"plaintext JSON array", k64, enc(pkcs7([]byte(`[1,2,3]`))), iv64, wechat.ErrDecrypt},
		{"plaintext JSON string", k64, enc(pkcs7([]byte(`"{}"`))), iv64, wechat.ErrDecrypt},
		{"plaintext truncated JSON", k64, enc(pkcs7(good[:20])), iv64, wechat.ErrDecrypt},
		{"plaintext JSON then garbage", k64, enc(pkcs7(append(bytes.Clone(good), 'x'))), iv64, wechat.ErrDecrypt},
		{"no watermark", k64, enc(pkcs7([]byte(`{"nickName":"x"}`))), iv64, wechat.ErrWatermark},
		{"null watermark", k64, enc(pkcs7([]byte(`{"watermark":null}`))), iv64, wechat.ErrWatermark},
		{"watermark not an object", k64, enc(pkcs7([]byte(`{"watermark":"wx"}`))), iv64, wechat.ErrWatermark},
		{"watermark without appid", k64, enc(pkcs7([]byte(`{"watermark":{"timestamp":1}}`))), iv64, wechat.ErrWatermark},
		{"watermark of another app", k64, enc(pkcs7([]byte(`{"watermark":{"appid":"wxevil"}}`))), iv64, wechat.ErrWatermark},
		{"watermark timestamp a string", k64, enc(pkcs7([]byte(`{"watermark":{"appid":"` + appID + `","timestamp":"1"}}`))), iv64, wechat.ErrWatermark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := c.Decrypt(tt.key, tt.data, tt.iv)
			if !errors.Is(err, tt.want) || raw != nil {
				t.Errorf("Decrypt = %q, %v; want %v", raw, err, tt.want)
			}
			if _, err := c.DecryptPhone(tt.key, tt.data, tt.iv); !errors.Is(err, tt.want) {
				t.Errorf("DecryptPhone: %v; want %v", err, tt.want)
			}
		})
	}
	// Bad padding and bad JSON must be indistinguishable (padding oracle).
	_, e1 := c.Decrypt(k64, withPad(bytes.Repeat([]byte{0}, 16)), iv64)
	_, e2 := c.Decrypt(k64, enc(pkcs7([]byte("hello"))), iv64)
	if e1.Error() != e2.Error() {
		t.Errorf("padding and JSON failures differ: %q vs %q", e1, e2)
	}
	if raw, err := c.Decrypt(k64, okData, iv64); err != nil || !json.Valid(raw) {
		t.Errorf("control case: %q, %v", raw, err)
	}
}

func TestDecryptMaxAge(t *testing.T) {
	data := readFile(t, "testdata/kat/phone.enc.b64")
	ts := time.Unix(1700000000, 0)
	for _, tt := range []struct {
		name   string
		maxAge time.Duration
		now    time.Time
		ok     bool
	}{
		{"off by default", 0, ts.Add(1000 * time.Hour), true},
		{"fresh", time.Hour, ts.Add(30 * time.Minute), true},
		{"too old", time.Hour, ts.Add(2 * time.Hour), false},
		{"from the future", time.Hour, ts.Add(-2 * time.Hour), false},
	} {
		c := wechat.NewClient(appID, secret, wechat.WithMaxDataAge(tt.maxAge), wechat.WithClock(func() time.Time { return tt.now }))
		_, err := c.Decrypt(katKey, data, katIV)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, wechat.ErrWatermark) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	// With an age limit, a watermark without a timestamp is refused.
	key := bytes.Repeat([]byte{1}, 16)
	iv := bytes.Repeat([]byte{2}, 16)
	c := wechat.NewClient(appID, secret, wechat.WithMaxDataAge(time.Hour))
	d := encrypt(t, key, iv, pkcs7([]byte(`{"watermark":{"appid":"`+appID+`"}}`)))
	if _, err := c.Decrypt(base64.StdEncoding.EncodeToString(key), d, base64.StdEncoding.EncodeToString(iv)); !errors.Is(err, wechat.ErrWatermark) {
		t.Errorf("no timestamp: err = %v", err)
	}
}

// A repeated key is a forgery attempt (WeChat never repeats one): refused
// at any depth, however it is spelled; what is accepted comes back
// re-encoded from what was checked.
func TestDecryptRepeatedKeyAndReencoding(t *testing.T) {
	c := wechat.NewClient(appID, secret)
	key := bytes.Repeat([]byte{7}, 16)
	iv := bytes.Repeat([]byte{9}, 16)
	k64 := base64.StdEncoding.EncodeToString(key)
	iv64 := base64.StdEncoding.EncodeToString(iv)
	wm := `"watermark":{"appid":"` + appID + `","timestamp":1}`
	for _, plain := range []string{
		`{"openId":"x","openId":"caller",` + wm + `}`,
		`{"openId":"x","open\u0049d":"caller",` + wm + `}`,
		`{"openId":"x","OPENID":"caller",` + wm + `}`,
		`{"a":{"b":1,"b":2},` + wm + `}`,
		`{"a":[{"b":1,"b":2}],` + wm + `}`,
		`{` + wm + `,` + wm + `}`,
	} {
		if raw, err := c.Decrypt(k64, encrypt(t, key, iv, pkcs7([]byte(plain))), iv64); !errors.Is(err, wechat.ErrDecrypt) || raw != nil {
			t.Errorf("%s: %q, %v; want ErrDecrypt", plain, raw, err)
		}
	}
	raw, err := c.Decrypt(k64, encrypt(t, key, iv, pkcs7([]byte(" { \"n\" : 1.50 , "+wm+" } "))), iv64)
	if want := `{"n":1.50,` + wm + `}`; err != nil || string(raw) != want {
		t.Errorf("re-encoded = %s, %v; want %s", raw, err, want)
	}
}
