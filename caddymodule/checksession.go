package caddymodule

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

type checkSessionRequest struct {
	OpenID string `json:"openid"`
}

type checkSessionResponse struct {
	Valid bool `json:"valid"`
}

// serveCheckSession answers POST /check_session: whether WeChat still
// holds the session key the gateway has for the user. It always asks
// WeChat (an upstream asks because it doubts, typically after a payment
// failed), and its answer updates the signature endpoint's cache: a
// valid key is remembered, an invalid one forgotten, so that the next
// signature is refused at once.
func (h *Handler) serveCheckSession(w http.ResponseWriter, r *http.Request) error {
	u := h.upstream
	var req checkSessionRequest
	if !h.decodeBody(w, r, &req) {
		u.count(upstreamCheckSession, codeInvalidRequest)
		return nil
	}
	if !validOpenID(req.OpenID) {
		u.count(upstreamCheckSession, codeInvalidRequest)
		return writeError(w, http.StatusBadRequest, codeInvalidRequest, `send {"openid"}: the user's openid`)
	}
	user, ok, err := h.upstreamUser(w, r, upstreamCheckSession, req.OpenID)
	if !ok {
		return err
	}
	openid := zap.String("openid", user.OpenID)
	id := newKeyCheckID(user.OpenID, user.SessionKey)
	valid, err := u.checks.ask(r.Context(), h.client, id, user.OpenID, user.SessionKey)
	if errors.Is(err, wechat.ErrInvalidInput) {
		// The openid was checked: the stored key is not a session key,
		// so WeChat holds it no more than any other.
		valid, err = false, nil
	}
	if err != nil {
		return h.keyCheckFailed(w, upstreamCheckSession, err, openid)
	}
	result := "valid"
	if !valid {
		result = "invalid"
	}
	u.count(upstreamCheckSession, result)
	h.logger.Info("session key checked", openid, zap.String("result", result))
	return writeJSON(w, http.StatusOK, checkSessionResponse{Valid: valid})
}
