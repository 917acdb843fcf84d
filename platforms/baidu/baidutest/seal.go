package baidutest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in, and so has no session_key to seal with.
var ErrNoSession = errors.New("baidutest: user has no session_key (never logged in)")

// Seal encrypts payload as JSON the way the smart program receives open
// data, under user's CURRENT session_key, for this fake's App Key; see
// SealWithKey.
func (f *Fake) Seal(user string, payload map[string]any) (encryptedData, iv string, err error) {
	f.mu.Lock()
	key := ""
	if u := f.users.Find(user); u != nil {
		key = u.sessionKey
	}
	f.mu.Unlock()
	if key == "" {
		return "", "", fmt.Errorf("%w: %q", ErrNoSession, user)
	}
	if payload == nil {
		payload = map[string]any{}
	}
	plain, err := json.Marshal(payload)
	if err != nil {
		return "", "", fmt.Errorf("baidutest: payload is not JSON: %w", err)
	}
	return SealWithKey(key, f.appKey, plain)
}

// SealPhone seals the getPhoneNumber payload for user, as Baidu does:
// {"mobile": "..."} (see SetPhone).
func (f *Fake) SealPhone(user string) (encryptedData, iv string, err error) {
	return f.Seal(user, map[string]any{"mobile": f.Phone(user)})
}

// SealWithKey seals userData exactly as given, in Baidu's layout: 16
// random bytes, the length of userData as 4 bytes big-endian, userData,
// appKey; PKCS#7-padded to a multiple of 32 bytes (as Baidu's own example
// is), AES-192-CBC under sessionKey (base64 of 24 bytes) with a random
// IV, both base64 (std). For tests that need another App Key, a stale
// key or a plaintext that is not JSON.
func SealWithKey(sessionKey, appKey string, userData []byte) (encryptedData, iv string, err error) {
	var prefix [16]byte
	_, _ = rand.Read(prefix[:])
	plain := append(prefix[:], binary.BigEndian.AppendUint32(nil, uint32(len(userData)))...)
	plain = append(plain, userData...)
	plain = append(plain, appKey...)
	return SealRaw(sessionKey, plain)
}

// SealRaw pads plaintext (PKCS#7 over 32-byte blocks) and encrypts it
// under sessionKey with a random IV, adding nothing else: for tests of a
// length field that overruns, or of a missing App Key.
func SealRaw(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 24 {
		return "", "", errors.New("baidutest: session key is not base64 of 24 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	pad := 32 - len(plaintext)%32
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	var ivb [aes.BlockSize]byte
	_, _ = rand.Read(ivb[:])
	cipher.NewCBCEncrypter(block, ivb[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb[:]), nil
}
