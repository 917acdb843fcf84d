package caddymodule

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	wechatplatform "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// The error codes of the JSON error body, as the spec's error table lists
// them. Clients branch on these, never on the message.
const (
	codeInvalidRequest     = "invalid_request"
	codeDecryptFailed      = "decrypt_failed"
	codeWatermarkMismatch  = "watermark_mismatch"
	codeUnauthenticated    = "unauthenticated"
	codeInvalidCode        = "invalid_code"
	codeUserBlocked        = "user_blocked"
	codePhoneRequired      = "phone_required"
	codeCodeNotForUser     = "code_not_for_user"
	codeNotFound           = "not_found"
	codeUnknownUser        = "unknown_user"
	codeSessionKeyInvalid  = "session_key_invalid"
	codeMethodNotAllowed   = "method_not_allowed"
	codeBodyTooLarge       = "body_too_large"
	codeRequestTimeout     = "request_timeout"
	codeUnsupportedMedia   = "unsupported_media_type"
	codeRateLimited        = "rate_limited"
	codeWeChatError        = "wechat_error"
	codeWeChatUnavailable  = "wechat_unavailable"
	codeStoreUnavailable   = "store_unavailable"
	codeWeChatTimeout      = "wechat_timeout"
	codeInternal           = "internal_error"
	retryAfterRateLimited  = "60"
	wwwAuthenticate        = `Bearer realm="wechat_auth"`
	wwwAuthenticateInvalid = `Bearer realm="wechat_auth", error="invalid_token"`
)

// errorBody is the only shape an error ever leaves the gateway in. The
// message is always one of our own sentences: a Go error string could
// carry a URL, a WeChat rid, or worse, so none is ever copied in here.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with the JSON error body. It returns nil: the
// request has been answered, and handing an error back to Caddy would
// make it write a second, non-JSON response.
func writeError(w http.ResponseWriter, status int, code, message string) error {
	if status == http.StatusUnauthorized {
		if w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", wwwAuthenticate)
		}
	}
	return writeJSON(w, status, errorBody{Error: code, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own response structs get here; they always marshal.
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal_error","message":"could not encode the answer"}`)
	}
	return writeJSONBody(w, status, body)
}

// writeJSONBody answers body, JSON already.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// wechatFailure is how an error from the WeChat client is answered.
type wechatFailure struct {
	status  int
	code    string
	message string
}

// classifyWeChatError maps an error from the wechat package to the spec's
// error table. Config errors (bad appid/secret) and anything unknown are a
// 502: the gateway is fine, WeChat's answer was unusable for us.
func classifyWeChatError(err error) wechatFailure {
	return failureAnswer(platform.Failure{Kind: wechatplatform.Kind(err)}, wechatplatform.Module{}.Info())
}

// failureAnswer is the answer to a failure of the platform info
// describes. The error codes keep their names (wechat_error, ...) on
// every platform: they name the platform's server API, whichever it is.
func failureAnswer(f platform.Failure, info platform.Info) wechatFailure {
	title := cmp.Or(info.Title, "WeChat")
	a := wechatFailure{http.StatusBadGateway, codeWeChatError, title + " answered something unusable"}
	switch f.Kind {
	case platform.InvalidCode:
		a = wechatFailure{http.StatusUnauthorized, codeInvalidCode, "the code is invalid, expired or already used: call " + cmp.Or(info.LoginCall, "wx.login") + " again"}
	case platform.UserBlocked:
		a = wechatFailure{http.StatusForbidden, codeUserBlocked, title + " refused this user (high-risk account)"}
	case platform.RateLimited:
		a = wechatFailure{http.StatusTooManyRequests, codeRateLimited, title + " rate limit reached: retry later"}
	case platform.Timeout:
		a = wechatFailure{http.StatusGatewayTimeout, codeWeChatTimeout, title + " did not answer in time"}
	case platform.Unavailable:
		a = wechatFailure{http.StatusServiceUnavailable, codeWeChatUnavailable, title + " is unavailable: retry later"}
	case platform.InvalidInput:
		a = wechatFailure{http.StatusBadRequest, codeInvalidRequest, "malformed encryptedData, iv or code"}
	case platform.Watermark:
		a = wechatFailure{http.StatusBadRequest, codeWatermarkMismatch, "the data was not sealed for this app or is too old"}
	case platform.Decrypt:
		a = wechatFailure{http.StatusBadRequest, codeDecryptFailed, "the data does not decrypt with the session key: log in again, then get the data again"}
	}
	if f.Message != "" {
		a.message = f.Message
	}
	return a
}

// classifyPhoneCodeError is classifyWeChatError for getuserphonenumber,
// whose codes come from the phone button, not from wx.login.
func classifyPhoneCodeError(err error) wechatFailure {
	if wechat.IsCodeNotForUser(err) {
		return wechatFailure{http.StatusForbidden, codeCodeNotForUser, "the phone code was made for another WeChat user: tap the phone button again"}
	}
	f := classifyWeChatError(err)
	if f.code == codeInvalidCode {
		f.message = "the phone code is invalid, expired or already used: tap the phone button again"
	}
	return f
}

// errcodeField logs WeChat's errcode, when the error carries one.
func errcodeField(err error) zap.Field {
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		return zap.Int("errcode", apiErr.Code)
	}
	return zap.Skip()
}

// errorField logs an error's text as the "error" field, without the
// request id WeChat appends to its messages ("invalid code, rid: ..."
// today, "hints: [ req_id: ... ]" in older answers). A rid identifies
// one call in WeChat's own logs: it is WeChat's to know, not ours to
// spread into log pipelines. Every log line of the handler that carries
// an error goes through here; the wechat package keeps the rid in its
// errors for callers that want it.
func errorField(err error) zap.Field {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return zap.Error(err)
	}
	clean := *apiErr
	clean.Msg = withoutRequestID(apiErr.Msg)
	return zap.String("error", strings.Replace(err.Error(), apiErr.Error(), clean.Error(), 1))
}

// withoutRequestID cuts WeChat's request id off an errmsg.
func withoutRequestID(msg string) string {
	lower := strings.ToLower(msg)
	for _, marker := range []string{"rid:", "rid :", "hint:", "hints:", "req_id"} {
		if i := strings.Index(lower, marker); i >= 0 {
			msg, lower = msg[:i], lower[:i]
		}
	}
	return strings.TrimRight(msg, " ,;:[(")
}

// write answers a failed WeChat call.
func (f wechatFailure) write(w http.ResponseWriter) error {
	if f.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterRateLimited)
	}
	return writeError(w, f.status, f.code, f.message)
}

// storeFailed logs (through storeLog: not once per request while the
// store is down), counts and answers a failure of the session store in
// operation (lookup, create_session, bind_phone, ...). It is a 503 and
// never a 401: a 401 tells clients to drop their token, and a store
// outage would then log every user out.
func (h *Handler) storeFailed(w http.ResponseWriter, operation string, err error, fields ...zap.Field) error {
	h.metrics.storeErrors.WithLabelValues(operation).Inc()
	if ok, suppressed := h.storeLog.allow(operation); ok {
		if suppressed > 0 {
			fields = append(fields, zap.Int("unlogged_since_last", suppressed))
		}
		h.logger.Error("session store failed", append(fields,
			zap.String("operation", operation),
			zap.String("result", codeStoreUnavailable),
			errorField(err))...)
	}
	w.Header().Set("Retry-After", "1")
	return writeError(w, http.StatusServiceUnavailable, codeStoreUnavailable, "the session store is unavailable: retry later")
}
