package baidu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// Baidu's sealed open data (swan-docs 用户数据的签名验证和加解密,
// develop/api/open/log_userdata, the page mirrors call
// 开发者后台校验与解密开放数据): AES-192-CBC, key = the 24-byte session
// key, IV 16 bytes from the API, and a plaintext of
//
//	16 random bytes | 4-byte big-endian length N | N bytes of user data | the App Key
//
// Baidu pads to a multiple of 32 bytes, not 16: the page's own example
// (App Key y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7) ends in 28 bytes of 0x1c, and
// its PHP accepts a pad of 1 to 32. So the padding here is PKCS#7 over
// 32-byte blocks; a strict 16-byte PKCS#7 (as WeChat's) would refuse real
// Baidu data.
const (
	randomPrefix = 16
	lengthField  = 4
	padBlock     = 32
)

// PhoneInfo is a user's phone number from the getPhoneNumber button.
// Baidu's decrypted payload is {"mobile": "15000000000"} (swan-docs,
// component button, open-type getPhoneNumber): one number, no country
// code, so PhoneNumber and PurePhoneNumber are both mobile and
// CountryCode is empty.
type PhoneInfo struct {
	// PhoneNumber is the number as Baidu gives it.
	PhoneNumber string `json:"phoneNumber"`
	// PurePhoneNumber is the same number (Baidu sends no country code).
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is always "": Baidu does not send one.
	CountryCode string `json:"countryCode"`
}

// String shows the number masked (150****0000), as logs must.
func (p PhoneInfo) String() string { return MaskPhone(p.PurePhoneNumber) }

// MaskPhone masks a phone number for logs: the first 3 and last 4 digits
// stay; a number too short for that is masked entirely.
func MaskPhone(n string) string {
	if len(n) < 8 {
		return strings.Repeat("*", len(n))
	}
	return n[:3] + strings.Repeat("*", len(n)-7) + n[len(n)-4:]
}

// Decrypt decrypts open data the smart program received (getPhoneNumber,
// getUserInfo...) with the user's session_key, checks that it ends with
// this client's App Key, and returns the user data: one JSON object
// without duplicate keys, re-encoded, so that no parser downstream reads
// something else than what was checked.
//
// Checks, each before the step that needs it (crypto/cipher panics on
// bad sizes):
//   - sessionKey, encryptedData and iv are standard base64;
//   - the key is 24 bytes, the IV 16, the ciphertext a non-zero multiple
//     of 16 (else ErrInvalidInput);
//   - the padding is PKCS#7 of 1 to 32 bytes, the length field fits in
//     what is left, and the user data is one JSON object (else
//     ErrDecrypt, one message for all);
//   - what follows the user data is this client's App Key (else
//     ErrWatermark).
func (c *Client) Decrypt(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	key, ivb, data, err := decodeInputs(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	obj, tail, err := open(key, ivb, data)
	if err != nil {
		return nil, err
	}
	if string(tail) != c.c.AppID || c.c.AppID == "" {
		return nil, newError("", ErrWatermark, "data is not for this App Key")
	}
	return obj, nil
}

// DecryptPhone decrypts the getPhoneNumber payload. A payload without a
// "mobile" string is ErrDecrypt.
func (c *Client) DecryptPhone(sessionKey, encryptedData, iv string) (*PhoneInfo, error) {
	raw, err := c.Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	var p struct {
		Mobile string `json:"mobile"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Mobile == "" {
		return nil, newError("", ErrDecrypt, "payload has no mobile")
	}
	return &PhoneInfo{PhoneNumber: p.Mobile, PurePhoneNumber: p.Mobile}, nil
}

// decodeInputs decodes and size-checks the three inputs. Its errors name
// which input is wrong, never its value.
func decodeInputs(sessionKey, encryptedData, iv string) (key, ivb, data []byte, err error) {
	if key, err = opendata.DecodeBase64(sessionKey); err != nil {
		return nil, nil, nil, newError("", ErrInvalidInput, "session_key is not base64")
	}
	if len(key) != SessionKeySize {
		return nil, nil, nil, newError("", ErrInvalidInput, "session_key is not 24 bytes")
	}
	if ivb, err = opendata.DecodeBase64(iv); err != nil {
		return nil, nil, nil, newError("", ErrInvalidInput, "iv is not base64")
	}
	if len(ivb) != aes.BlockSize {
		return nil, nil, nil, newError("", ErrInvalidInput, "iv is not 16 bytes")
	}
	if data, err = opendata.DecodeBase64(encryptedData); err != nil {
		return nil, nil, nil, newError("", ErrInvalidInput, "encryptedData is not base64")
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, nil, nil, newError("", ErrInvalidInput, "encryptedData is not a non-zero multiple of 16 bytes")
	}
	return key, ivb, data, nil
}

// open decrypts data (sizes already checked) and splits Baidu's layout.
// It returns the user data, checked and re-encoded, and what follows it
// (the App Key of the app the data was sealed for).
//
// Padding oracle: whoever can submit ciphertexts and tell a padding
// failure from a later one can decrypt, and forge, data under the key.
// So bad padding, an overrunning length and bad JSON are one error with
// one message, the padding is checked in constant time, and the later
// checks run on something even when the padding is bad.
func open(key, iv, data []byte) (json.RawMessage, []byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable: the key is 24 bytes
		return nil, nil, newError("", ErrInvalidInput, "session_key is not an AES key")
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	n, padOK := unpad(plain)
	plain = plain[:n]

	ok := padOK == 1
	var body, tail []byte
	if len(plain) >= randomPrefix+lengthField {
		size := uint64(binary.BigEndian.Uint32(plain[randomPrefix:]))
		rest := plain[randomPrefix+lengthField:]
		if size <= uint64(len(rest)) {
			body, tail = rest[:size], rest[size:]
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	obj, err := opendata.Object(body)
	if err != nil || !ok {
		return nil, nil, newError("", ErrDecrypt, "")
	}
	return obj, tail, nil
}

// unpad checks PKCS#7 over 32-byte blocks (a pad of 1 to 32 bytes, all
// equal, no longer than b) in time independent of the pad value. It
// returns the unpadded length and 1, or len(b) and 0. len(b) >= 16.
func unpad(b []byte) (n, ok int) {
	pad := int(b[len(b)-1])
	ok = subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, padBlock) &
		subtle.ConstantTimeLessOrEq(pad, len(b))
	for i := 0; i < padBlock && i < len(b); i++ {
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad)
		same := subtle.ConstantTimeByteEq(b[len(b)-1-i], byte(pad))
		ok &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	return subtle.ConstantTimeSelect(ok, len(b)-pad, len(b)), ok
}
