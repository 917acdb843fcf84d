package caddymodule

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// The answer to a login code is kept for retries under a key derived from
// the code, and sealed with another key derived from it. A dump of the
// store then holds neither codes nor tokens: to open an entry one needs
// the code itself, and whoever holds a fresh code could log in with it
// anyway. Domain-separated hashes keep the two keys unrelated.
const (
	loginKeyDomain  = "caddy-wechat-auth login-retry id\x00"
	loginSealDomain = "caddy-wechat-auth login-retry seal\x00"
)

func (h *Handler) loginKey(code string) string {
	sum := sha256.Sum256([]byte(loginKeyDomain + h.client.AppID() + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

type sealedLogin struct {
	Token     string `json:"t"`
	ExpiresAt int64  `json:"e"`
}

func loginAEAD(appID, code string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(loginSealDomain + appID + "\x00" + code))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealLoginResult(appID, code, token string, expiresAt time.Time) ([]byte, error) {
	aead, err := loginAEAD(appID, code)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(sealedLogin{Token: token, ExpiresAt: expiresAt.Unix()})
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func openLoginResult(appID, code string, sealed []byte) (string, time.Time, error) {
	aead, err := loginAEAD(appID, code)
	if err != nil {
		return "", time.Time{}, err
	}
	if len(sealed) < aead.NonceSize() {
		return "", time.Time{}, errors.New("sealed login result too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return "", time.Time{}, err
	}
	var sl sealedLogin
	if err := json.Unmarshal(plain, &sl); err != nil {
		return "", time.Time{}, err
	}
	return sl.Token, time.Unix(sl.ExpiresAt, 0), nil
}
