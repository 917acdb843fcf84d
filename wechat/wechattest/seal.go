package wechattest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in, and so has no session_key to seal with.
var ErrNoSession = errors.New("wechattest: user has no session_key (never logged in)")

// Seal encrypts payload the way a mini program receives open data
// (getUserInfo, WeRun, share info): payload plus
// "watermark": {"appid", "timestamp"} as JSON, PKCS#7-padded, AES-128-CBC
// under user's CURRENT session_key with a random IV, both base64 (std).
//
// A "watermark" key already in payload is kept as given, so tests can
// seal a wrong or missing-appid watermark. payload is not modified.
func (f *Fake) Seal(user string, payload map[string]any) (encryptedData, iv string, err error) {
	f.mu.Lock()
	key := ""
	if u := f.users[user]; u != nil {
		key = u.sessionKey
	}
	now := f.now()
	f.mu.Unlock()
	if key == "" {
		return "", "", fmt.Errorf("%w: %q", ErrNoSession, user)
	}
	p := maps.Clone(payload)
	if p == nil {
		p = map[string]any{}
	}
	if _, ok := p["watermark"]; !ok {
		p["watermark"] = map[string]any{"appid": f.appID, "timestamp": now.Unix()}
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return "", "", fmt.Errorf("wechattest: payload is not JSON: %w", err)
	}
	return SealWithKey(key, plain)
}

// SealPhone seals the legacy getPhoneNumber payload for user, with the
// user's phone number (see SetPhone): phoneNumber, purePhoneNumber,
// countryCode as a string ("86", as WeChat sends it in this form) and the
// watermark.
func (f *Fake) SealPhone(user string) (encryptedData, iv string, err error) {
	f.mu.Lock()
	pure, cc, display := f.phoneOf(user)
	f.mu.Unlock()
	return f.Seal(user, map[string]any{
		"phoneNumber":     display,
		"purePhoneNumber": pure,
		"countryCode":     cc,
	})
}

// SealWithKey encrypts plaintext exactly as given (no watermark added)
// under sessionKey (base64 of 16 bytes): PKCS#7, AES-128-CBC, random IV,
// base64 std. For tests that need a stale key or a plaintext that is not
// JSON.
func SealWithKey(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != aes.BlockSize {
		return "", "", errors.New("wechattest: session key is not base64 of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	var ivb [aes.BlockSize]byte
	_, _ = rand.Read(ivb[:])
	cipher.NewCBCEncrypter(block, ivb[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb[:]), nil
}
