package caddymodule

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// signatureRequest asks for the user-state signature of data.
type signatureRequest struct {
	OpenID string  `json:"openid"`
	Data   *string `json:"data"`
}

// signatureResponse is WeChat's user-state signature, as
// wx.requestVirtualPayment and the virtual-payment server APIs take it.
type signatureResponse struct {
	Signature string `json:"signature"`
	SigMethod string `json:"sig_method"`
}

// serveSignature answers POST /signature: hex(hmac_sha256(session_key,
// data)) with the user's current key, once WeChat has said (within the
// last minute) that it still holds that key. A signature made with a key
// WeChat replaced fails at payment, far from here; 409 tells the upstream
// now, so that it can have the mini program log in again.
func (h *Handler) serveSignature(w http.ResponseWriter, r *http.Request) error {
	u := h.upstream
	var req signatureRequest
	if !h.decodeBody(w, r, &req) {
		u.count(upstreamSignature, codeInvalidRequest)
		return nil
	}
	if !validOpenID(req.OpenID) || req.Data == nil || *req.Data == "" {
		// An empty data is refused: its signature is the credential of
		// checkSessionKey and resetUserSessionKey, not a payment's.
		u.count(upstreamSignature, codeInvalidRequest)
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"openid", "data"}: the user's openid and the non-empty string to sign`)
	}
	user, ok, err := h.upstreamUser(w, r, upstreamSignature, req.OpenID)
	if !ok {
		return err
	}
	openid := zap.String("openid", user.OpenID)
	valid, cached, err := u.checks.check(r.Context(), h.client, user.OpenID, user.SessionKey)
	if err != nil {
		return h.keyCheckFailed(w, upstreamSignature, err, openid)
	}
	if !valid {
		return h.sessionKeyInvalid(w, upstreamSignature, openid)
	}
	u.count(upstreamSignature, "ok")
	h.logger.Info("user-state signature", openid, zap.Bool("key_check_cached", cached), zap.String("result", "ok"))
	return writeJSON(w, http.StatusOK, signatureResponse{
		Signature: wechat.UserStateSignature(user.SessionKey, *req.Data),
		SigMethod: "hmac_sha256",
	})
}

// upstreamUser reads the user record of openid, for its newest session
// key. When it returns false the request has been answered (404
// unknown_user, or 503 when the store failed) and err is what to return.
func (h *Handler) upstreamUser(w http.ResponseWriter, r *http.Request, endpoint, openid string) (store.User, bool, error) {
	user, err := h.store.User(r.Context(), openid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.upstream.count(endpoint, codeUnknownUser)
		return user, false, writeError(w, http.StatusNotFound, codeUnknownUser, "no live session for this openid: the user must log in through the mini program")
	case err != nil:
		h.upstream.count(endpoint, codeStoreUnavailable)
		return user, false, h.storeFailed(w, "user", err, zap.String("endpoint", endpoint))
	}
	return user, true, nil
}

// sessionKeyInvalid answers 409: WeChat no longer holds the key the store
// has for the user.
func (h *Handler) sessionKeyInvalid(w http.ResponseWriter, endpoint string, openid zap.Field) error {
	h.upstream.count(endpoint, codeSessionKeyInvalid)
	h.logger.Warn("session key no longer valid at WeChat", openid, zap.String("endpoint", endpoint), zap.String("result", codeSessionKeyInvalid))
	return writeError(w, http.StatusConflict, codeSessionKeyInvalid,
		"WeChat no longer holds this user's session key: the mini program must log in again (wx.login)")
}

// keyCheckFailed answers a checkSessionKey call that failed, as the
// error table says (502, 503, 504, 429).
func (h *Handler) keyCheckFailed(w http.ResponseWriter, endpoint string, err error, openid zap.Field) error {
	if errors.Is(err, wechat.ErrInvalidInput) {
		// The openid was checked, so it is the stored key that is not a
		// session key: no signature can be made with it.
		return h.sessionKeyInvalid(w, endpoint, openid)
	}
	f := classifyWeChatError(err)
	h.upstream.count(endpoint, f.code)
	h.logger.Warn("checking the session key failed", openid, zap.String("endpoint", endpoint),
		zap.String("result", f.code), errcodeField(err), errorField(err))
	return f.write(w)
}
