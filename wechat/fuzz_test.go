package wechat

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

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/.

const fuzzAppID = "wx0123456789abcdef"

// FuzzDecrypt feeds arbitrary strings to Decrypt: it must never panic,
// must fail with one of its three error classes, must succeed only with a
// JSON object carrying our watermark, and must never quote the key.
func FuzzDecrypt(f *testing.F) {
	c := NewClient(fuzzAppID, "secret")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		raw, err := c.Decrypt(key, data, iv)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrWatermark) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(key) >= 16 && strings.Contains(err.Error(), key) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		var w struct{ Watermark Watermark }
		if again, err := opendata.Object(raw); err != nil || !bytes.Equal(again, raw) || json.Unmarshal(raw, &w) != nil || w.Watermark.AppID != fuzzAppID {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// FuzzDecryptPlaintext encrypts an arbitrary plaintext correctly and
// checks that Decrypt accepts exactly the JSON objects without repeated
// keys that carry our watermark, returning them as opendata.Object
// re-encodes them.
func FuzzDecryptPlaintext(f *testing.F) {
	c := NewClient(fuzzAppID, "secret")
	key := []byte("0123456789abcdef")
	iv := []byte("fedcba9876543210")
	block, _ := aes.NewCipher(key)
	b64 := base64.StdEncoding.EncodeToString
	f.Fuzz(func(t *testing.T, plain []byte) {
		pad := 16 - len(plain)%16
		ct := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
		raw, err := c.Decrypt(b64(key), b64(ct), b64(iv))

		want, objErr := opendata.Object(plain)
		valid := objErr == nil && opendata.CheckWatermark(want, fuzzAppID, 0, time.Time{}) == nil
		switch {
		case valid && err != nil:
			t.Fatalf("refused %q: %v", plain, err)
		case valid && !bytes.Equal(raw, want):
			t.Fatalf("got %q, want %q", raw, want)
		case !valid && err == nil:
			t.Fatalf("accepted %q", plain)
		case !valid && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrWatermark):
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

// FuzzDecodeResponse feeds arbitrary bodies to the answer decoder of every
// API: it must never panic, must give a result, an *APIError or
// ErrBadResponse, and must never pass on the secret WeChat might echo.
func FuzzDecodeResponse(f *testing.F) {
	const secret = "FUZZSECRET0123456789"
	c := NewClient(fuzzAppID, secret)
	red := c.redactor("TOKEN0123456789")
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			t.Helper()
			var ae *APIError
			switch {
			case err == nil:
			case errors.As(err, &ae):
				if ae.Code == 0 || len(ae.Msg) > 256+3 {
					t.Fatalf("bad APIError %+v", ae)
				}
			case !errors.Is(err, ErrBadResponse):
				t.Fatalf("unexpected error class: %v", err)
			}
			if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "TOKEN0123456789")) {
				t.Fatalf("secret in %q", err)
			}
		}
		var s code2SessionResponse
		err := decodeResponse(APICode2Session, 200, "text/plain", body, &s, red)
		if err == nil {
			err = s.validate()
		}
		check(err)
		var tk stableTokenResponse
		check(decodeResponse(APIStableToken, 200, "application/json", body, &tk, red))
		var p phoneNumberResponse
		check(decodeResponse(APIPhoneNumber, 200, "application/json", body, &p, red))
	})
}
