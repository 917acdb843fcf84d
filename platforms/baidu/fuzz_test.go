package baidu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

const fuzzAppKey = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"

// FuzzDecrypt feeds arbitrary strings to Decrypt: it must never panic,
// must fail with one of its three error classes, and must never quote the
// key.
func FuzzDecrypt(f *testing.F) {
	f.Add("1df09d0a1677dd72b8325aec59576e0c", "OpCoJgs7RrVgaMNDixIvaCIyV2SFDBNLivgkVqtzq2GC10egsn+PKmQ/+5q+chT8xzldLUog2haTItyIkKyvzvmXonBQLIMeq54axAu9c3KG8IhpFD6+ymHocmx07ZKi7eED3t0KyIxJgRNSDkFk5RV1ZP2mSWa7ZgCXXcAbP0RsiUcvhcJfrSwlpsm0E1YJzKpYy429xrEEGvK+gfL+Cw==", "1df09d0a1677dd72b8325Q==")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA==")
	c := NewClient(fuzzAppKey, "secret")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		_, err := c.Decrypt(key, data, iv)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrWatermark) {
			t.Fatalf("unexpected error class: %v", err)
		}
		if len(key) >= 16 && strings.Contains(err.Error(), key) {
			t.Fatalf("error quotes the key: %v", err)
		}
	})
}

// FuzzDecryptPlaintext encrypts an arbitrary plaintext correctly (any
// length field, any tail) and checks that Decrypt accepts exactly the
// layouts whose length fits, whose user data is a JSON object and whose
// tail is our App Key.
func FuzzDecryptPlaintext(f *testing.F) {
	f.Add([]byte(`{"mobile":"15000000000"}`), uint32(24), []byte(fuzzAppKey))
	f.Add([]byte(`{}`), uint32(0xffffffff), []byte(fuzzAppKey))
	f.Add([]byte(`{"a":1,"a":2}`), uint32(13), []byte(fuzzAppKey))
	c := NewClient(fuzzAppKey, "secret")
	key := bytes.Repeat([]byte{7}, 24)
	iv := bytes.Repeat([]byte{9}, 16)
	block, _ := aes.NewCipher(key)
	b64 := base64.StdEncoding.EncodeToString
	f.Fuzz(func(t *testing.T, body []byte, n uint32, tail []byte) {
		plain := append(make([]byte, 16), binary.BigEndian.AppendUint32(nil, n)...)
		plain = append(append(plain, body...), tail...)
		pad := 32 - len(plain)%32
		ct := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
		raw, err := c.Decrypt(b64(key), b64(ct), b64(iv))

		fits := uint64(n) <= uint64(len(body)+len(tail))
		objOK, ours := false, false
		if fits {
			_, objErr := opendata.Object(plain[20 : 20+n])
			objOK, ours = objErr == nil, string(plain[20+n:]) == fuzzAppKey
		}
		switch {
		case (err == nil) != (objOK && ours):
			t.Fatalf("Decrypt(%q) = %s, %v", plain, raw, err)
		case err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrWatermark):
			t.Fatalf("unexpected error class: %v", err)
		case errors.Is(err, ErrWatermark) && !objOK:
			t.Fatalf("a malformed layout reported as a watermark: %q", plain)
		}
	})
}

// FuzzDecodeSession feeds arbitrary answers to the login decoder: it
// must never panic, must give a session, an *APIError or ErrBadResponse,
// and must never pass on the App Secret Baidu might echo.
func FuzzDecodeSession(f *testing.F) {
	const secret = "FUZZSECRET0123456789"
	f.Add(200, []byte(`{"openid":"o","session_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"Invalid authorization code: x"}`))
	f.Add(401, []byte(`{"error":"invalid_client","error_description":"`+secret+`"}`))
	c := NewClient(fuzzAppKey, secret)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		s, err := c.decodeSession(status, body)
		var ae *APIError
		switch {
		case err == nil:
			if s.OpenID == "" || status != 200 {
				t.Fatalf("accepted %d %q", status, body)
			}
		case errors.As(err, &ae):
			if ae.Code == "" || len(ae.Msg) > 256+3 {
				t.Fatalf("bad APIError %+v", ae)
			}
		case !errors.Is(err, ErrBadResponse):
			t.Fatalf("unexpected error class: %v", err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("secret in %q", err)
		}
	})
}
