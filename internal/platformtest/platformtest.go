// Package platformtest holds the checks the tests of the platform clients
// share: decryption round trips and refusals (platforms/qq, douyin,
// kuaishou, whose open data is WeChat's scheme), and that no secret
// reaches an error or a printed value (all of them, baidu and alipay
// included, with Errors and LeakyTransport).
package platformtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// Sentinels are a package's decryption sentinels.
type Sentinels struct {
	ErrInvalidInput, ErrDecrypt, ErrWatermark error
}

// Subject is a platform client and its fake, seen by the checks.
type Subject struct {
	// AppID of the client.
	AppID string
	// Login logs user in with code and returns the session key.
	Login func(t *testing.T, code string) string
	// Seal and SealPhone are the fake's.
	Seal      func(user string, payload map[string]any) (data, iv string, err error)
	SealPhone func(user string) (data, iv string, err error)
	// Decrypt is the client's.
	Decrypt func(key, data, iv string) (json.RawMessage, error)
	// DecryptPhone is the client's, fields flattened.
	DecryptPhone func(key, data, iv string) (phone, pure, cc string, err error)
	// OtherApp is Decrypt of a client of another app.
	OtherApp func(key, data, iv string) (json.RawMessage, error)
	Sentinels
}

func encrypt(t *testing.T, key, iv, padded []byte) string {
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

// CheckDecrypt checks round trips through the fake and every refusal.
func CheckDecrypt(t *testing.T, s Subject) {
	t.Helper()
	key := s.Login(t, "alice")
	data, iv, err := s.Seal("alice", map[string]any{"nickName": "Alice", "n": json.Number("1.50")})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Decrypt(key, data, iv)
	if err != nil || !strings.Contains(string(raw), `"nickName":"Alice"`) || !strings.Contains(string(raw), `"n":1.50`) {
		t.Errorf("round trip = %s, %v", raw, err)
	}
	if _, err := s.OtherApp(key, data, iv); !errors.Is(err, s.ErrWatermark) {
		t.Errorf("another app's client: %v, want the watermark error", err)
	}
	if _, _, _, err := s.DecryptPhone(key, data, iv); !errors.Is(err, s.ErrDecrypt) {
		t.Errorf("DecryptPhone of non-phone data: %v", err)
	}
	data, iv, err = s.SealPhone("alice")
	if err != nil {
		t.Fatal(err)
	}
	phone, pure, cc, err := s.DecryptPhone(key, data, iv)
	if err != nil || cc != "86" || len(pure) != 11 || phone != pure {
		t.Errorf("DecryptPhone = %q %q %q, %v", phone, pure, cc, err)
	}
	// A new login rotates the key: data sealed before no longer opens.
	key2 := s.Login(t, "alice:2")
	if _, err := s.Decrypt(key2, data, iv); !errors.Is(err, s.ErrDecrypt) {
		t.Errorf("stale data: %v", err)
	}

	k := bytes.Repeat([]byte{7}, 16)
	ivb := bytes.Repeat([]byte{9}, 16)
	k64 := base64.StdEncoding.EncodeToString(k)
	iv64 := base64.StdEncoding.EncodeToString(ivb)
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	wm := `"watermark":{"appid":"` + s.AppID + `","timestamp":1}`
	enc := func(plain string) string { return encrypt(t, k, ivb, pkcs7([]byte(plain))) }
	body := bytes.Repeat([]byte{'{'}, 32)
	good := enc(`{` + wm + `}`)
	for _, tt := range []struct {
		name          string
		key, data, iv string
		want          error
	}{
		{"control", k64, good, iv64, nil},
		{"key not base64", "!!!!", good, iv64, s.ErrInvalidInput},
		{"key 24 bytes", b64(24), good, iv64, s.ErrInvalidInput},
		{"key 15 bytes", b64(15), good, iv64, s.ErrInvalidInput},
		{"iv 8 bytes", k64, good, b64(8), s.ErrInvalidInput},
		{"iv not base64", k64, good, "%%", s.ErrInvalidInput},
		{"data empty", k64, "", iv64, s.ErrInvalidInput},
		{"data 17 bytes", k64, b64(17), iv64, s.ErrInvalidInput},
		{"bad padding", k64, encrypt(t, k, ivb, append(bytes.Clone(body), bytes.Repeat([]byte{0}, 16)...)), iv64, s.ErrDecrypt},
		{"pad 17", k64, encrypt(t, k, ivb, append(bytes.Clone(body), bytes.Repeat([]byte{17}, 16)...)), iv64, s.ErrDecrypt},
		{"not JSON", k64, enc("hello"), iv64, s.ErrDecrypt},
		{"array", k64, enc(`[` + wm[12:] + `]`), iv64, s.ErrDecrypt},
		{"repeated key", k64, enc(`{"openId":"x","openId":"y",` + wm + `}`), iv64, s.ErrDecrypt},
		{"repeated escaped key", k64, enc(`{"openId":"x","open\u0049d":"y",` + wm + `}`), iv64, s.ErrDecrypt},
		{"repeated nested key", k64, enc(`{"a":[{"b":1,"b":2}],` + wm + `}`), iv64, s.ErrDecrypt},
		{"no watermark", k64, enc(`{"a":1}`), iv64, s.ErrWatermark},
		{"watermark of another app", k64, enc(`{"watermark":{"appid":"evil","timestamp":1}}`), iv64, s.ErrWatermark},
		{"watermark appid a number", k64, enc(`{"watermark":{"appid":1}}`), iv64, s.ErrWatermark},
	} {
		raw, err := s.Decrypt(tt.key, tt.data, tt.iv)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) || raw != nil {
			t.Errorf("%s: %q, %v; want %v", tt.name, raw, err, tt.want)
		}
		if _, _, _, err := s.DecryptPhone(tt.key, tt.data, tt.iv); !errors.Is(err, tt.want) {
			t.Errorf("%s: DecryptPhone: %v; want %v", tt.name, err, tt.want)
		}
	}
}

// Renderings returns every way an error is likely to be printed, through
// its whole Unwrap tree.
func Renderings(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, Renderings(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, Renderings(e)...)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		out = append(out, ue.URL)
	}
	return out
}

// NoSecrets fails t if any rendering of errs, or any fmt verb of values,
// contains one of secrets (raw or query-escaped).
func NoSecrets(t *testing.T, errs []error, values []any, secrets map[string]string) {
	t.Helper()
	for what, s := range secrets {
		if q := url.QueryEscape(s); q != s {
			secrets[what+" (escaped)"] = q
		}
	}
	leaks := func(r string) {
		t.Helper()
		for what, s := range secrets {
			if s != "" && strings.Contains(r, s) {
				t.Errorf("%s leaks in %q", what, r)
			}
		}
	}
	for _, err := range errs {
		if err == nil {
			t.Error("an error path gave no error")
		}
		for _, r := range Renderings(err) {
			leaks(r)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range values {
			leaks(fmt.Sprintf(verb, v))
		}
	}
}

// Errors collects the errors of the paths a redaction test forces, each
// under its name, for NoSecrets.
type Errors struct {
	t    *testing.T
	errs []error
}

// NewErrors returns an empty collection for t.
func NewErrors(t *testing.T) *Errors { return &Errors{t: t} }

// Add records err under name; a path that gave no error fails the test.
func (e *Errors) Add(name string, err error) {
	e.t.Helper()
	if err == nil {
		e.t.Errorf("%s: no error", name)
		return
	}
	e.errs = append(e.errs, fmt.Errorf("%s: %w", name, err))
}

// All returns the errors recorded so far.
func (e *Errors) All() []error { return e.errs }
