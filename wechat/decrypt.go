package wechat

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// Decrypt decrypts open data the mini program received from WeChat (the
// legacy getPhoneNumber form, getUserInfo, WeRun, share info) with the
// user's session_key, and returns the plaintext JSON object after checking
// its watermark.
//
// Checks, in order, each before the step that needs it (crypto/cipher
// panics on bad sizes, so sizes are checked first):
//   - sessionKey, encryptedData and iv are standard base64 (a space is read
//     as '+': that is what a query string does to base64);
//   - the key and the IV are exactly 16 bytes; the ciphertext is a
//     non-zero multiple of 16 bytes (else ErrInvalidInput);
//   - AES-128-CBC with strict PKCS#7 padding (1..16, every pad byte equal)
//     gives exactly one JSON object in which no object repeats a key
//     (else ErrDecrypt);
//   - watermark.appid is this client's app id, and with WithMaxDataAge
//     watermark.timestamp is recent enough (else ErrWatermark).
//
// The object returned is re-encoded, compact, from what was checked (keys
// in their order, numbers with their text), not the plaintext as sealed.
// A repeated key is ErrDecrypt because WeChat's open data never repeats
// one, so a repeated key is a forgery attempt:
// {"openId":"x","openId":"<caller>"} passes a check that keeps the last
// key, while a parser that keeps the first reads x. Keys are compared
// after unescaping ("open\u0049d" is "openId") and without case (Go's
// encoding/json matches fields that way).
//
// Data sealed with an older session_key (the user logged in again since)
// fails with ErrDecrypt.
func (c *Client) Decrypt(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	obj, err := opendata.Open(sessionKey, encryptedData, iv, 16)
	if err == nil {
		err = opendata.CheckWatermark(obj, c.appID, c.maxAge, c.now())
	}
	if err != nil {
		return nil, fromOpenData(err)
	}
	return obj, nil
}

// DecryptInto is Decrypt followed by json.Unmarshal into v. A plaintext
// that does not fit v is ErrDecrypt.
func (c *Client) DecryptInto(sessionKey, encryptedData, iv string, v any) error {
	raw, err := c.Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return newError("", ErrDecrypt, fmt.Sprintf("payload does not fit %T", v))
	}
	return nil
}

// DecryptPhone decrypts the legacy getPhoneNumber payload. A payload
// without a phone number is ErrDecrypt.
func (c *Client) DecryptPhone(sessionKey, encryptedData, iv string) (*PhoneInfo, error) {
	var p PhoneInfo
	if err := c.DecryptInto(sessionKey, encryptedData, iv, &p); err != nil {
		return nil, err
	}
	if p.PurePhoneNumber == "" && p.PhoneNumber == "" {
		return nil, newError("", ErrDecrypt, "payload has no phone number")
	}
	return &p, nil
}

// fromOpenData turns an error of package opendata into this package's
// sentinel with the same detail (which names an input, never its value).
func fromOpenData(err error) error {
	var oe *opendata.Error
	if !errors.As(err, &oe) {
		return newError("", ErrDecrypt, "")
	}
	kind := ErrDecrypt
	switch oe.Kind {
	case opendata.ErrInvalidInput:
		kind = ErrInvalidInput
	case opendata.ErrWatermark:
		kind = ErrWatermark
	}
	return newError("", kind, oe.Detail)
}
