package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// serveLogout answers POST /logout: the token is dead everywhere once
// the 204 is sent (Store.DeleteSession's promise).
func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request, th store.TokenHash, sess store.Session) error {
	if err := h.store.DeleteSession(r.Context(), th); err != nil {
		return h.storeFailed(w, "delete_session", err, zap.String("openid", sess.User.OpenID))
	}
	h.logger.Info("logout", zap.String("openid", sess.User.OpenID))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
