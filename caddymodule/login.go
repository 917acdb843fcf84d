package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
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
	user      store.User
	retried   bool
}

// storeFailure marks an error of the session store inside a login, so that
// it is answered 503 store_unavailable rather than as a WeChat failure.
type storeFailure struct {
	operation string
	err       error
}

func (e storeFailure) Error() string { return "session store: " + e.err.Error() }
func (e storeFailure) Unwrap() error { return e.err }

func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if !h.decodeBody(w, r, &req) {
		h.metrics.login(codeInvalidRequest)
		return nil
	}
	if !validCode(req.Code) {
		h.metrics.login(codeInvalidRequest)
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `"code" must be the code of wx.login()`)
	}

	// A client whose codes WeChat keeps refusing is stopped here, before
	// it spends the app's quota (see refusals.go).
	var release func(refused bool) (reachedLimit bool)
	if h.refusals != nil {
		var (
			retryAfter time.Duration
			ok         bool
		)
		release, retryAfter, ok = h.refusals.acquire(r.Context(), clientOf(r))
		if !ok && r.Context().Err() != nil {
			// The client went away while waiting for the logins ahead
			// of it: nobody reads an answer, and it was not limited.
			return nil
		}
		if !ok {
			h.metrics.login(codeRateLimited)
			w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(retryAfter), 10))
			return writeError(w, http.StatusTooManyRequests, codeRateLimited,
				"too many invalid login codes from this address: retry after the time in Retry-After")
		}
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
	if release != nil && release(h.isInvalidCode(err)) {
		ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
		h.logger.Warn("too many refused login codes: the client's logins answer 429 until its window ends",
			zap.String("client_ip", ip),
			zap.Int("refused_code_limit", *h.RefusedCodeLimit),
			zap.Duration("window", time.Duration(h.RefusedCodeWindow)))
	}
	if err != nil {
		var sf storeFailure
		if errors.As(err, &sf) {
			h.metrics.login(codeStoreUnavailable)
			return h.storeFailed(w, sf.operation, sf.err)
		}
		f := h.failure(err)
		h.metrics.login(f.code)
		h.logger.Warn("login failed",
			zap.String("result", f.code),
			h.errcodeField(err),
			errorField(err))
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
// was seen in the last five minutes, with WeChat's refusal when WeChat
// refused it in the last five minutes, else by exchanging it with WeChat.
func (h *Handler) login(ctx context.Context, code, key string) (*loginResult, error) {
	kept, err := h.store.GetLoginResult(ctx, key)
	switch {
	case err == nil:
		res, err := h.replayKeptAnswer(ctx, code, kept)
		if err != nil {
			return nil, err
		}
		if res != nil {
			return res, nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, storeFailure{"get_login_result", err}
	}

	ws, err := h.api().Login(ctx, code)
	if err != nil {
		if h.isInvalidCode(err) {
			return h.refused(ctx, code, key, err)
		}
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, storeFailure{"create_session", fmt.Errorf("generating token: %w", err)}
	}
	th := store.HashToken(token)
	user := store.User{OpenID: ws.OpenID, UnionID: ws.UnionID, SessionKey: ws.SessionKey}
	expiresAt, err := h.store.CreateSession(ctx, th, user, time.Duration(h.SessionTTL), time.Duration(*h.SessionKeyGrace))
	if err != nil {
		return nil, storeFailure{"create_session", err}
	}
	// Read the record back: a phone bound earlier (or a unionid learned
	// earlier) belongs to the answer too.
	if sess, err := h.store.Lookup(ctx, th); err == nil {
		user = sess.User
	}

	if enc, err := encryptKeptAnswer(h.keyAppID(), code, keptAnswer{Token: token, ExpiresAt: expiresAt.Unix()}); err == nil {
		if err := h.store.PutLoginResult(ctx, key, enc, keptAnswerWindow); err != nil {
			// The login itself succeeded; only a retry of it would now
			// make a second WeChat call (and get invalid_code).
			h.logger.Warn("could not keep the login result for retries", errorField(err))
		}
	}
	return &loginResult{token: token, expiresAt: expiresAt, user: user}, nil
}

// refused handles the platform's refusal of code. A code refused as already
// used (40163) may have been logged in a moment ago by the same client
// through another gateway sharing the store: when that login's answer is
// kept by now and its session lives, it is the answer (as a retry would
// get it). Otherwise the refusal is remembered, so that the code sent
// again within keptAnswerWindow is answered the same without a call.
func (h *Handler) refused(ctx context.Context, code, key string, err error) (*loginResult, error) {
	if kept, gerr := h.store.GetLoginResult(ctx, key); gerr == nil {
		if res, rerr := h.replayKeptAnswer(ctx, code, kept); res != nil && rerr == nil {
			return res, nil
		}
	}
	var ka keptAnswer
	var apiErr *wechat.APIError
	switch {
	case errors.As(err, &apiErr):
		ka.Refused = apiErr.Code
	default:
		ka.RefusedCode = h.api().ErrorCode(err)
	}
	if ka.Refused == 0 && ka.RefusedCode == "" {
		return nil, err
	}
	if enc, serr := encryptKeptAnswer(h.keyAppID(), code, ka); serr == nil {
		if perr := h.store.PutLoginResult(ctx, key, enc, keptAnswerWindow); perr != nil {
			// Only a repeat of this code costs a WeChat call again.
			h.logger.Warn("could not remember a refused login code", errorField(perr))
		}
	}
	return nil, err
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
