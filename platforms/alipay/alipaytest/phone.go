package alipaytest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
)

// PhoneResponse returns what my.getPhoneNumber gives for user, as
// response and sign: the plaintext {"code":"10000","msg":"Success",
// "mobile":"..."} sealed by SealPhone.
func (f *Fake) PhoneResponse(user string) (response, sign string) {
	plain, _ := json.Marshal(map[string]string{"code": "10000", "msg": "Success", "mobile": f.Phone(user)})
	return f.SealPhone(plain)
}

// PhonePayload returns my.getPhoneNumber's res.response for user: the
// JSON text {"response", "sign", "sign_type": "RSA2", "encrypt_type":
// "AES", "charset": "UTF-8"}.
func (f *Fake) PhonePayload(user string) string {
	resp, sign := f.PhoneResponse(user)
	b, _ := json.Marshal(map[string]string{
		"response": resp, "sign": sign, "sign_type": "RSA2", "encrypt_type": "AES", "charset": "UTF-8",
	})
	return string(b)
}

// SealPhone seals plaintext as Alipay seals sensitive content (接口内容加密
// 方式): PKCS#7, AES-128-CBC with a zero IV under the content key,
// standard base64; and signs it RSA2 over the ciphertext with a double
// quote added before and after it, as Alipay signs encrypted content.
// For tests of failure plaintexts (40003 isv.invalid-auth-relations...).
func (f *Fake) SealPhone(plaintext []byte) (response, sign string) {
	block, _ := aes.NewCipher(f.aesKey)
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(buf, buf)
	response = base64.StdEncoding.EncodeToString(buf)
	return response, f.Sign([]byte(`"` + response + `"`))
}
