package caddymodule

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
)

// The answer to a login code is kept for retries under a key derived from
// the code, and sealed with another key derived from it. A dump of the
// store then holds neither codes nor tokens: to open an entry one needs
// the code itself, and whoever holds a fresh code could log in with it
// anyway. Domain-separated hashes keep the two keys unrelated.
//
// The same entry remembers a code WeChat refused (its errcode instead of
// a token), so that sending that code again costs no WeChat call. Sealed
// too: nobody without the code can make a good code look refused.
const (
	loginKeyDomain  = "caddy-wechat-auth login-retry id\x00"
	loginSealDomain = "caddy-wechat-auth login-retry seal\x00"
)

func (h *Handler) loginKey(code string) string {
	sum := sha256.Sum256([]byte(loginKeyDomain + h.client.AppID() + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// sealedLogin is a kept answer: a session (token and expiry), or
// WeChat's refusal of the code (its errcode).
type sealedLogin struct {
	Token     string `json:"t,omitempty"`
	ExpiresAt int64  `json:"e,omitempty"`
	Refused   int    `json:"r,omitempty"`
}

func loginAEAD(appID, code string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(loginSealDomain + appID + "\x00" + code))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealLoginResult(appID, code string, sl sealedLogin) ([]byte, error) {
	aead, err := loginAEAD(appID, code)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(sl)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func openLoginResult(appID, code string, sealed []byte) (sealedLogin, error) {
	var sl sealedLogin
	aead, err := loginAEAD(appID, code)
	if err != nil {
		return sl, err
	}
	if len(sealed) < aead.NonceSize() {
		return sl, errors.New("sealed login result too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return sl, err
	}
	err = json.Unmarshal(plain, &sl)
	return sl, err
}
