package alipay

import (
	"encoding/json"
	"strings"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// maxPhoneResponse caps the ciphertext of a phone payload: real ones are
// about 100 bytes of base64.
const maxPhoneResponse = 64 << 10

// PhoneInfo is a user's phone number from my.getPhoneNumber. Alipay's
// plaintext is {"code": "10000", "msg": "Success", "mobile": "..."}
// (mini/api my.getPhoneNumber): one number, no country code, so
// PhoneNumber and PurePhoneNumber are both mobile and CountryCode is
// empty.
type PhoneInfo struct {
	// PhoneNumber is the number as Alipay gives it.
	PhoneNumber string `json:"phoneNumber"`
	// PurePhoneNumber is the same number.
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is always "": Alipay does not send one.
	CountryCode string `json:"countryCode"`
}

// String shows the number masked (159****1905), as logs must.
func (p PhoneInfo) String() string {
	n := p.PurePhoneNumber
	if len(n) < 8 {
		return strings.Repeat("*", len(n))
	}
	return n[:3] + strings.Repeat("*", len(n)-7) + n[len(n)-4:]
}

// phonePlain is the decrypted payload. Its error keys are camelCase
// (subCode, subMsg) in Alipay's examples, unlike the gateway's sub_code.
type phonePlain struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"subCode"`
	SubMsg  string `json:"subMsg"`
	Mobile  string `json:"mobile"`
}

// ParsePhonePayload reads what my.getPhoneNumber gives the mini program
// in res.response: a JSON string {"response", "sign", "sign_type",
// "encrypt_type", "charset"}. It returns response and sign for
// DecryptPhone, refusing a sign_type other than RSA2 or an encrypt_type
// other than AES when they are given.
func ParsePhonePayload(payload []byte) (response, sign string, err error) {
	var p struct {
		Response    string `json:"response"`
		Sign        string `json:"sign"`
		SignType    string `json:"sign_type"`
		EncryptType string `json:"encrypt_type"`
	}
	if len(payload) > maxPhoneResponse || json.Unmarshal(payload, &p) != nil {
		return "", "", newError(APIPhoneNumber, ErrInvalidInput, "payload is not a JSON object of strings")
	}
	if p.SignType != "" && !strings.EqualFold(p.SignType, "RSA2") {
		return "", "", newError(APIPhoneNumber, ErrInvalidInput, "sign_type is not RSA2")
	}
	if p.EncryptType != "" && !strings.EqualFold(p.EncryptType, "AES") {
		return "", "", newError(APIPhoneNumber, ErrInvalidInput, "encrypt_type is not AES")
	}
	return p.Response, p.Sign, nil
}

// DecryptPhone reads the phone number out of my.getPhoneNumber's
// response and sign (see ParsePhonePayload), following Alipay's
// 接口内容加密方式 / 敏感信息加解密 rules:
//
//  1. sign is verified FIRST, RSA2 with Alipay's public key, over the
//     ciphertext with a double quote added before and after it
//     ("\"" + response + "\"": Alipay signs encrypted content as the JSON
//     string it is, and its server-side sample for 敏感信息加解密 adds the
//     quotes when the content does not start with "{"; verifying the bare
//     string fails on every real payload). Nothing of an unverified
//     payload is decrypted.
//  2. response is decrypted: base64, AES-128-CBC with a zero IV and
//     PKCS#7, under the content key (WithAESKey).
//  3. the plaintext must be one JSON object; code "10000" carries mobile.
//
// Errors: ErrInvalidInput for no content key or public key, an empty or
// over-long response, a plaintext (unencrypted) response, no sign;
// ErrDecrypt with ErrSignature for a sign that does not verify; ErrDecrypt
// for bad base64, padding or JSON, or no mobile; *APIError (API
// APIPhoneNumber) for a verified failure such as 40003
// isv.invalid-auth-relations (the user did not authorize) or 20000
// (busy).
func (c *Client) DecryptPhone(response, sign string) (*PhoneInfo, error) {
	switch {
	case len(c.aesKey) != AESKeySize:
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "no content key (aes_key) of 16 bytes")
	case c.pub == nil:
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "no Alipay public key")
	case response == "":
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "empty response")
	case len(response) > maxPhoneResponse:
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "response longer than 64 KiB")
	case strings.HasPrefix(strings.TrimSpace(response), "{"):
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "response is not encrypted: set the app's content encryption (接口内容加密方式)")
	case sign == "":
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "payload has no sign: set the app's signing (接口加签方式)")
	}
	if err := Verify(c.pub, []byte(`"`+response+`"`), sign); err != nil {
		return nil, newError(APIPhoneNumber, ErrDecrypt, "the sign does not verify with Alipay's public key", ErrSignature)
	}
	ct, err := opendata.DecodeBase64(response)
	if err != nil {
		return nil, newError(APIPhoneNumber, ErrDecrypt, "response is not base64")
	}
	plain, err := opendata.DecryptCBC(c.aesKey, make([]byte, 16), ct)
	if err != nil {
		return nil, newError(APIPhoneNumber, ErrDecrypt, "response does not decrypt with the content key")
	}
	obj, err := opendata.Object(plain)
	var p phonePlain
	if err != nil || json.Unmarshal(obj, &p) != nil {
		return nil, newError(APIPhoneNumber, ErrDecrypt, "plaintext is not a JSON object of strings")
	}
	if p.Code != "10000" {
		return nil, &APIError{
			API:     APIPhoneNumber,
			Code:    clip(cleanText(p.Code), 16),
			Msg:     clip(cleanText(p.Msg), 256),
			SubCode: clip(cleanText(p.SubCode), 64),
			SubMsg:  clip(cleanText(p.SubMsg), 256),
		}
	}
	if p.Mobile == "" {
		return nil, newError(APIPhoneNumber, ErrDecrypt, "payload has no mobile")
	}
	return &PhoneInfo{PhoneNumber: p.Mobile, PurePhoneNumber: p.Mobile}, nil
}
