package opendata

import (
	"encoding/json"
	"fmt"
)

// Open is what a platform client's Decrypt does before the watermark:
// sessionKey, encryptedData and iv as the mini program sends them
// (standard base64, see DecodeBase64), a session key of exactly keyLen
// bytes (16 on WeChat, QQ, Douyin, Kuaishou), then DecryptObject.
//
// Its ErrInvalidInput details name the input that is wrong
// ("session_key is not base64"), never its value.
func Open(sessionKey, encryptedData, iv string, keyLen int) (json.RawMessage, error) {
	key, err := DecodeBase64(sessionKey)
	if err != nil {
		return nil, fail(ErrInvalidInput, "session_key is not base64")
	}
	if len(key) != keyLen {
		return nil, fail(ErrInvalidInput, fmt.Sprintf("session_key is not %d bytes", keyLen))
	}
	ivb, err := DecodeBase64(iv)
	if err != nil {
		return nil, fail(ErrInvalidInput, "iv is not base64")
	}
	if len(ivb) != 16 {
		return nil, fail(ErrInvalidInput, "iv is not 16 bytes")
	}
	data, err := DecodeBase64(encryptedData)
	if err != nil {
		return nil, fail(ErrInvalidInput, "encryptedData is not base64")
	}
	if len(data) == 0 || len(data)%16 != 0 {
		return nil, fail(ErrInvalidInput, "encryptedData is not a non-zero multiple of 16 bytes")
	}
	return DecryptObject(key, ivb, data)
}
