package caddymodule

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Which session key opened a payload, as logged and counted.
const (
	keyCurrent  = "current_key"
	keyPrevious = "previous_key"
)

// openSealed decrypts open data the mini program received sealed with the
// caller's session key: with the newest key, and when that does not open
// it, with the key the newest login replaced, while its grace lasts.
//
// Only platforms whose data is sealed with the session key
// (platform.Sealer) get here; failures the platform classifies Decrypt
// try the previous key.
//
// That second try solves WeChat's own getPhoneNumber pitfall on the
// server: a wx.login in the button's callback rotates the key while the
// payload in hand was sealed with the old one. It widens nothing: the
// previous key is the same user's, the grace is short (session_key_grace),
// and the payload must still pass strict padding, JSON, the watermark and
// the caller's openId. Only a decryption failure (ErrDecrypt) tries the
// previous key; a malformed payload or a foreign watermark is final. The
// answer never says which key opened the data; the log line and the
// decryptions_total metric do.
func openSealed[T any](ctx context.Context, h *Handler, openid, currentKey string, open func(sessionKey string) (T, error)) (v T, key string, err error) {
	v, err = open(currentKey)
	if err == nil || h.api().Classify(err).Kind != platform.Decrypt {
		return v, keyCurrent, err
	}
	prev, perr := h.store.PreviousSessionKey(ctx, openid)
	switch {
	case errors.Is(perr, store.ErrNotFound):
		return v, "", err
	case perr != nil:
		return v, "", storeFailure{"previous_session_key", perr}
	}
	v, err = open(prev)
	return v, keyPrevious, err
}

// sealedFailed answers a payload that did not open (or a store failure
// met on the way), and counts it.
func (h *Handler) sealedFailed(w http.ResponseWriter, endpoint string, err error, fields ...zap.Field) error {
	var sf storeFailure
	if errors.As(err, &sf) {
		h.metrics.decryptions.WithLabelValues(endpoint, codeStoreUnavailable).Inc()
		return h.storeFailed(w, sf.operation, sf.err, fields...)
	}
	f := h.failure(err)
	h.metrics.decryptions.WithLabelValues(endpoint, f.code).Inc()
	msg := "decrypt failed"
	if endpoint == "phone" {
		msg = "phone binding failed"
	}
	h.logger.Warn(msg, append(fields, zap.String("result", f.code), errorField(err))...)
	return f.write(w)
}
