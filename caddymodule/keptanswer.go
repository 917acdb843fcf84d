package caddymodule

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// The kept answer to a login code is what the code got: a session, or
// WeChat's refusal. It is kept for keptAnswerWindow, so that a client
// retrying after a lost answer gets the same session, and a refused code
// sent again gets the same refusal, neither costing a WeChat call.
//
// It is stored under a key derived from the code and encrypted with
// another key derived from it. A dump of the store then holds neither
// codes nor tokens: to read an entry one needs the code itself, and
// whoever holds a fresh code could log in with it anyway; nobody without
// the code can make a good code look refused. Domain-separated hashes
// keep the two keys unrelated. The domain strings are part of what the
// stores hold: changing them orphans every kept answer.
const (
	keptAnswerIDDomain  = "caddy-wechat-auth login-retry id\x00"
	keptAnswerKeyDomain = "caddy-wechat-auth login-retry seal\x00"
)

// loginKey is the store key of code's kept answer, and the key under
// which concurrent logins with code share one exchange.
func (h *Handler) loginKey(code string) string {
	sum := sha256.Sum256([]byte(keptAnswerIDDomain + h.keyAppID() + "\x00" + code))
	return hex.EncodeToString(sum[:])
}

// keptAnswer is the kept answer to a login code: a session (token and
// expiry), or the platform's refusal of the code (WeChat's errcode in
// Refused, another platform's code as text in RefusedCode).
type keptAnswer struct {
	Token       string `json:"t,omitempty"`
	ExpiresAt   int64  `json:"e,omitempty"`
	Refused     int    `json:"r,omitempty"`
	RefusedCode string `json:"c,omitempty"`
}

// keptAnswerAEAD is the cipher of code's kept answer.
func keptAnswerAEAD(appID, code string) (cipher.AEAD, error) {
	key := sha256.Sum256([]byte(keptAnswerKeyDomain + appID + "\x00" + code))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// encryptKeptAnswer is ka as the store keeps it: a random nonce, then ka
// in JSON, encrypted and authenticated with code's key.
func encryptKeptAnswer(appID, code string, ka keptAnswer) ([]byte, error) {
	aead, err := keptAnswerAEAD(appID, code)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(ka)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// decryptKeptAnswer reads back what encryptKeptAnswer wrote for the same
// code; any other code, or a damaged entry, is an error.
func decryptKeptAnswer(appID, code string, enc []byte) (keptAnswer, error) {
	var ka keptAnswer
	aead, err := keptAnswerAEAD(appID, code)
	if err != nil {
		return ka, err
	}
	if len(enc) < aead.NonceSize() {
		return ka, errors.New("kept answer too short")
	}
	plain, err := aead.Open(nil, enc[:aead.NonceSize()], enc[aead.NonceSize():], nil)
	if err != nil {
		return ka, err
	}
	err = json.Unmarshal(plain, &ka)
	return ka, err
}

// refusedCode is the platform's refusal of a code, remembered from an
// earlier exchange: it is answered as invalid_code, and for WeChat it
// unwraps to the *wechat.APIError WeChat answered then.
type refusedCode struct{ err error }

func (e refusedCode) Error() string {
	return e.err.Error() + " (refused within the last 5 minutes; not sent again)"
}

func (e refusedCode) Unwrap() error { return e.err }

// keptCode is another platform's code kept with a refusal.
type keptCode struct{ title, code string }

func (e keptCode) Error() string { return e.title + " refused the code: " + e.code }

// replayKeptAnswer reads code's kept answer: a refusal it returns as the
// error WeChat gave, a session it returns after checking the session
// still lives. It returns nil, nil when there is nothing to replay (an
// entry it cannot open, or a logout in between ended the session), and
// a storeFailure when the store failed.
func (h *Handler) replayKeptAnswer(ctx context.Context, code string, enc []byte) (*loginResult, error) {
	ka, err := decryptKeptAnswer(h.keyAppID(), code, enc)
	if err != nil {
		return nil, nil
	}
	switch {
	case ka.Refused != 0:
		return nil, refusedCode{&wechat.APIError{API: wechat.APICode2Session, Code: ka.Refused}}
	case ka.RefusedCode != "":
		return nil, refusedCode{keptCode{h.info.Title, ka.RefusedCode}}
	}
	sess, err := store.LookupFresh(ctx, h.store, store.HashToken(ka.Token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeFailure{"lookup", err}
	}
	return &loginResult{token: ka.Token, expiresAt: time.Unix(ka.ExpiresAt, 0), user: sess.User, retried: true}, nil
}
