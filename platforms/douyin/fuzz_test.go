package douyin

import (
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
)

// FuzzDecodeResponse feeds arbitrary bodies to the code2Session decoder: it
// must never panic, must give a session, an *APIError or ErrBadResponse,
// and must never pass on the secret Douyin might echo.
func FuzzDecodeResponse(f *testing.F) {
	const secret = "FUZZSECRET0123456789"
	for _, s := range []string{`{"err_no":0,"data":{"openid":"o","session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}}`,
		`{"err_no":-1,"err_tips":"system error","data":{}}`, `{"err_no":40017,"err_tips":"` + secret + `"}`,
		`<html>`, `{"err_no":"1"}`, `{"err_no":0,"data":`, `{"err_no":1e3}`, `{}`} {
		f.Add([]byte(s))
	}
	c := NewClient("app", secret)
	req := c.code2SessionRequest("code", "")
	f.Fuzz(func(t *testing.T, body []byte) {
		var r code2SessionResponse
		err := c.c.Call.Decode(req, 200, "application/json", body, &r)
		if err == nil {
			err = r.validate()
		}
		platformtest.CheckDecoded(t, err, ErrBadResponse, 0, secret)
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
