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
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// maxCodeLength bounds a wx.login code (WeChat's are 32 characters).
const maxCodeLength = 256

type loginRequest struct {
	Code string `json:"code"`
}

type loginResponse struct {
	Token     string `json:"token"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	HasPhone  bool   `json:"has_phone"`
}

// loginResult is what one login (or its retry) produced.
type loginResult struct {
	token     string
	expiresAt time.Time
	user      User
	retried   bool
}

// storeFailure marks an error of the session store inside a login, so that
// it is answered 503 store_unavailable rather than as a WeChat failure.
type storeFailure struct{ err error }

func (e storeFailure) Error() string { return "session store: " + e.err.Error() }
func (e storeFailure) Unwrap() error { return e.err }

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if !decodeJSONBody(w, r, &req) {
		h.metrics.login(codeInvalidRequest)
		return nil
	}
	if !validCode(req.Code) {
		h.metrics.login(codeInvalidRequest)
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `"code" must be the code of wx.login()`)
	}

	// Concurrent posts of one code (a client retrying before the first
	// answer came back) share one exchange with WeChat: the second would
	// fail anyway, since WeChat codes are single use. The shared work runs
	// on a context the first caller's disconnect cannot cancel; the WeChat
	// client bounds it with its timeout.
	key := h.loginKey(req.Code)
	v, err, _ := h.logins.Do(key, func() (any, error) {
		return h.login(context.WithoutCancel(r.Context()), req.Code, key)
	})
	if err != nil {
		var sf storeFailure
		if errors.As(err, &sf) {
			h.metrics.login(codeStoreUnavailable)
			h.logger.Error("login failed: session store", zap.Error(sf.err))
			return writeStoreError(w)
		}
		f := classifyWeChatError(err)
		h.metrics.login(f.code)
		h.logger.Warn("login failed",
			zap.String("result", f.code),
			errcodeField(err),
			zap.Error(err))
		return f.write(w)
	}
	res := v.(*loginResult)
	result := "ok"
	if res.retried {
		result = "retried"
	}
	h.metrics.login(result)
	h.logger.Info("login",
		zap.String("openid", res.user.OpenID),
		zap.String("result", result),
		zap.Bool("has_unionid", res.user.UnionID != ""),
		zap.Bool("has_phone", res.user.Phone != ""))
	return writeJSON(w, http.StatusOK, loginResponse{
		Token:     res.token,
		ExpiresIn: expiresIn(res.expiresAt),
		OpenID:    res.user.OpenID,
		UnionID:   res.user.UnionID,
		HasPhone:  res.user.Phone != "",
	})
}

// login answers a code: with the session it already created when the code
// was seen in the last five minutes, else by exchanging it with WeChat.
func (h *Handler) login(ctx context.Context, code, key string) (*loginResult, error) {
	sealed, err := h.store.GetLoginResult(ctx, key)
	switch {
	case err == nil:
		res, err := h.replayLogin(ctx, code, sealed)
		if err != nil {
			return nil, storeFailure{err}
		}
		if res != nil {
			return res, nil
		}
	case !errors.Is(err, ErrNotFound):
		return nil, storeFailure{err}
	}

	ws, err := h.client.Code2Session(ctx, code)
	if err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, storeFailure{fmt.Errorf("generating token: %w", err)}
	}
	th := HashToken(token)
	user := User{OpenID: ws.OpenID, UnionID: ws.UnionID, SessionKey: ws.SessionKey}
	expiresAt, err := h.store.CreateSession(ctx, th, user, time.Duration(h.SessionTTL))
	if err != nil {
		return nil, storeFailure{err}
	}
	// Read the record back: a phone bound earlier (or a unionid learned
	// earlier) belongs to the answer too.
	if sess, err := h.store.Lookup(ctx, th); err == nil {
		user = sess.User
	}

	if sealed, err := sealLoginResult(h.client.AppID(), code, token, expiresAt); err == nil {
		if err := h.store.PutLoginResult(ctx, key, sealed, loginRetryWindow); err != nil {
			// The login itself succeeded; only a retry of it would now
			// make a second WeChat call (and get invalid_code).
			h.logger.Warn("could not keep the login result for retries", zap.Error(err))
		}
	}
	return &loginResult{token: token, expiresAt: expiresAt, user: user}, nil
}

// replayLogin opens a kept login result and checks its session still
// lives. It returns nil, nil when there is nothing to replay (a logout in
// between ended the session), and an error only when the store failed.
func (h *Handler) replayLogin(ctx context.Context, code string, sealed []byte) (*loginResult, error) {
	token, expiresAt, err := openLoginResult(h.client.AppID(), code, sealed)
	if err != nil {
		return nil, nil
	}
	sess, err := h.store.Lookup(withFreshLookup(ctx), HashToken(token))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &loginResult{token: token, expiresAt: expiresAt, user: sess.User, retried: true}, nil
}

// validCode accepts what a wx.login code can be: printable ASCII, bounded.
func validCode(code string) bool {
	if code == "" || len(code) > maxCodeLength {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < 0x21 || code[i] > 0x7e {
			return false
		}
	}
	return true
}

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
