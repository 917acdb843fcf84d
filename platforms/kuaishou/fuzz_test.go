package kuaishou

import (
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
)

// FuzzDecodeResponse feeds arbitrary bodies to the code2Session decoder: it
// must never panic, must give a session, an *APIError or ErrBadResponse,
// and must never pass on the secret Kuaishou might echo.
func FuzzDecodeResponse(f *testing.F) {
	const secret = "FUZZSECRET0123456789"
	for _, s := range []string{`{"result":1,"open_id":"o","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}`,
		`{"result":100200100,"error":"invalid_request","error_msg":"x"}`, `{"result":100200101,"error_msg":"` + secret + `"}`,
		`<html>`, `{"result":"1"}`, `{"result":1,"open_id":`, `{"result":1e3}`, `{}`} {
		f.Add([]byte(s))
	}
	c := NewClient("app", secret)
	req := c.code2SessionRequest("code")
	f.Fuzz(func(t *testing.T, body []byte) {
		var r code2SessionResponse
		err := c.c.Call.Decode(req, 200, "application/json", body, &r)
		if err == nil {
			err = r.validate()
		}
		platformtest.CheckDecoded(t, err, ErrBadResponse, 1, secret)
	})
}

// FuzzDecrypt: Decrypt never panics and fails only with its three classes.
func FuzzDecrypt(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("", "", "")
	c := NewClient("app", "secret")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		_, err := c.Decrypt(key, data, iv)
		_, phoneErr := c.DecryptPhone(key, data, iv)
		platformtest.CheckDecryptClass(t, err, phoneErr, platformtest.Sentinels{ErrInvalidInput: ErrInvalidInput, ErrDecrypt: ErrDecrypt, ErrWatermark: ErrWatermark})
	})
}
