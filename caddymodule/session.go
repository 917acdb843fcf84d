package caddymodule

import (
	"net/http"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// sessionResponse is the answer of GET /session.
type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	HasPhone  bool   `json:"has_phone"`
	ExpiresIn int64  `json:"expires_in"`
}

// serveSession answers GET /session: who the token belongs to, and for
// how long. Nothing secret: no session key, no phone number.
func (h *Handler) serveSession(w http.ResponseWriter, _ *http.Request, _ store.TokenHash, sess store.Session) error {
	return writeJSON(w, http.StatusOK, sessionResponse{
		OpenID:    sess.User.OpenID,
		UnionID:   sess.User.UnionID,
		HasPhone:  sess.User.Phone != "",
		ExpiresIn: expiresIn(sess.ExpiresAt),
	})
}

// expiresIn is the whole seconds left until t, never negative.
func expiresIn(t time.Time) int64 {
	s := int64(time.Until(t) / time.Second)
	if s < 0 {
		return 0
	}
	return s
}
