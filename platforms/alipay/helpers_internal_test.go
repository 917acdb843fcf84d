package alipay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/base64"
	"testing"
)

// sealForTest seals plain as Alipay seals a phone payload: PKCS#7,
// AES-128-CBC with a zero IV, base64; signed over the quoted ciphertext.
func sealForTest(t *testing.T, key *rsa.PrivateKey, aesKey, plain []byte) (response, sign string) {
	t.Helper()
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(buf, buf)
	response = base64.StdEncoding.EncodeToString(buf)
	sign, err = Sign(key, []byte(`"`+response+`"`))
	if err != nil {
		t.Fatal(err)
	}
	return response, sign
}
