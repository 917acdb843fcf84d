package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
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
//     gives a JSON object (else ErrDecrypt);
//   - watermark.appid is this client's app id, and with WithMaxDataAge
//     watermark.timestamp is recent enough (else ErrWatermark).
//
// Data sealed with an older session_key (the user logged in again since)
// fails with ErrDecrypt.
func (c *Client) Decrypt(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	plain, err := decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	if err := c.checkWatermark(plain); err != nil {
		return nil, err
	}
	return plain, nil
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

// decodeB64 decodes standard base64, repairing the one corruption a
// query string causes: '+' read back as ' '. Nothing else is guessed.
func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.ReplaceAll(s, " ", "+"))
}

// decrypt is everything of Decrypt but the watermark. Its errors name
// which input is wrong, never its value.
func decrypt(sessionKey, encryptedData, iv string) ([]byte, error) {
	key, err := decodeB64(sessionKey)
	if err != nil {
		return nil, newError("", ErrInvalidInput, "session_key is not base64")
	}
	if len(key) != aes.BlockSize {
		return nil, newError("", ErrInvalidInput, "session_key is not 16 bytes")
	}
	ivb, err := decodeB64(iv)
	if err != nil {
		return nil, newError("", ErrInvalidInput, "iv is not base64")
	}
	if len(ivb) != aes.BlockSize {
		return nil, newError("", ErrInvalidInput, "iv is not 16 bytes")
	}
	data, err := decodeB64(encryptedData)
	if err != nil {
		return nil, newError("", ErrInvalidInput, "encryptedData is not base64")
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, newError("", ErrInvalidInput, "encryptedData is not a non-zero multiple of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable: the key is 16 bytes
		return nil, newError("", ErrInvalidInput, "session_key is not an AES key")
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(data, data)

	// Padding oracle: whoever can submit ciphertexts and tell a padding
	// failure from a later failure can decrypt, and forge, data under
	// the key (CBC-R) -- a phone number with a valid watermark, say. So
	// a bad padding and a bad JSON are one error with one message, the
	// padding is checked in constant time, and the JSON check runs even
	// when the padding is bad. A gateway should still rate-limit
	// decrypt failures.
	n, padOK := unpad(data)
	plain := data[:n]
	objOK := 0
	if isJSONObject(plain) {
		objOK = 1
	}
	if padOK&objOK != 1 {
		return nil, newError("", ErrDecrypt, "")
	}
	return plain, nil
}

// unpad checks strict PKCS#7 on b (len(b) >= 16, a multiple of 16) in time
// independent of the pad value. It returns the unpadded length and 1, or
// len(b) and 0.
func unpad(b []byte) (n, ok int) {
	pad := int(b[len(b)-1])
	ok = subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad) // byte i from the end is padding
		same := subtle.ConstantTimeByteEq(b[len(b)-1-i], byte(pad))
		ok &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	return subtle.ConstantTimeSelect(ok, len(b)-pad, len(b)), ok
}

func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// checkWatermark enforces that the data was issued for this app (open data
// of another app, sealed with a session_key the attacker holds there,
// would otherwise be accepted here) and, optionally, recently.
func (c *Client) checkWatermark(plain []byte) error {
	var w struct {
		Watermark *Watermark `json:"watermark"`
	}
	if err := json.Unmarshal(plain, &w); err != nil {
		return newError("", ErrWatermark, "watermark is malformed")
	}
	if w.Watermark == nil {
		return newError("", ErrWatermark, "no watermark")
	}
	if w.Watermark.AppID != c.appID {
		return newError("", ErrWatermark, "watermark is for another app")
	}
	if c.maxAge > 0 {
		age := c.now().Sub(time.Unix(w.Watermark.Timestamp, 0))
		if w.Watermark.Timestamp <= 0 || age > c.maxAge || age < -c.maxAge {
			return newError("", ErrWatermark, "watermark timestamp out of range")
		}
	}
	return nil
}
