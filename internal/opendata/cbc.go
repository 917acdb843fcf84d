package opendata

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// DecodeBase64 decodes standard base64 (with padding), repairing the one
// corruption a query string causes: '+' read back as ' '. Nothing else is
// guessed: URL-safe base64 or missing padding is an error.
func DecodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.ReplaceAll(s, " ", "+"))
}

// DecryptCBC decrypts ciphertext with AES-CBC under key (16, 24 or 32
// bytes: AES-128, -192 or -256) and iv (16 bytes), and removes strict
// PKCS#7 padding (1 to 16 bytes, every pad byte equal), checked in
// constant time. ciphertext is not modified.
//
// Sizes are checked first (ErrInvalidInput), so crypto/cipher never sees
// one it would panic on; bad padding is ErrDecrypt.
//
// A caller that goes on to parse the plaintext should use DecryptObject
// instead: telling a padding failure from a later failure is a padding
// oracle.
func DecryptCBC(key, iv, ciphertext []byte) ([]byte, error) {
	buf, err := decryptBlocks(key, iv, ciphertext)
	if err != nil {
		return nil, err
	}
	n, ok := unpad(buf)
	if ok != 1 {
		return nil, fail(ErrDecrypt, "")
	}
	return buf[:n], nil
}

// DecryptObject is DecryptCBC followed by Object, with one error for
// both: ErrDecrypt with no detail, whether the padding or the JSON was
// wrong, and the JSON check runs even when the padding is bad.
//
// Why: whoever can submit ciphertexts and tell a padding failure from a
// later failure can decrypt, and forge, data under the key (CBC-R): a
// phone number with a valid watermark, say. A gateway should still
// rate-limit decrypt failures.
func DecryptObject(key, iv, ciphertext []byte) (json.RawMessage, error) {
	buf, err := decryptBlocks(key, iv, ciphertext)
	if err != nil {
		return nil, err
	}
	n, padOK := unpad(buf)
	obj, err := Object(buf[:n])
	objOK := 0
	if err == nil {
		objOK = 1
	}
	if padOK&objOK != 1 {
		return nil, fail(ErrDecrypt, "")
	}
	return obj, nil
}

// decryptBlocks checks the sizes and decrypts a copy of ciphertext.
func decryptBlocks(key, iv, ciphertext []byte) ([]byte, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fail(ErrInvalidInput, "key is not 16, 24 or 32 bytes")
	}
	if len(iv) != aes.BlockSize {
		return nil, fail(ErrInvalidInput, "iv is not 16 bytes")
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, fail(ErrInvalidInput, "ciphertext is not a non-zero multiple of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil { // unreachable: the key size is checked above
		return nil, fail(ErrInvalidInput, "key is not an AES key")
	}
	buf := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, ciphertext)
	return buf, nil
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
