package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// lookup resolves the request's bearer token. It returns
// store.ErrNotFound for a missing, malformed, unknown or expired token,
// and any other error when the store failed; present reports whether an
// Authorization header was sent at all.
//
// fresh skips any local cache of the store (store.FreshLooker): the
// endpoints that decrypt need the newest session_key, which a login
// through another gateway may just have rotated.
func (h *Handler) lookup(r *http.Request, fresh bool) (th store.TokenHash, sess store.Session, present bool, err error) {
	token, present := bearerToken(r)
	if token == "" {
		return th, sess, present, store.ErrNotFound
	}
	th = store.HashToken(token)
	if fresh {
		sess, err = store.LookupFresh(r.Context(), h.store, th)
	} else {
		sess, err = h.store.Lookup(r.Context(), th)
	}
	// Expiry is the store's job (Lookup answers ErrNotFound for an
	// expired session, which the conformance suite checks), so the hot
	// path reads the clock once, not twice.
	return th, sess, true, err
}

// passThrough authenticates a request that is not for one of the
// endpoints and hands it to the next handler.
func (h *Handler) passThrough(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	_, sess, present, err := h.lookup(r, false)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		if !present && h.Mode == ModeOptional {
			h.metrics.anonymous.Inc()
			return next.ServeHTTP(w, r)
		}
		h.metrics.unauthenticated.Inc()
		return h.unauthenticated(w, present)
	default:
		h.metrics.storeError.Inc()
		return h.storeFailed(w, "lookup", err)
	}

	if h.RequirePhone && sess.User.Phone == "" {
		h.metrics.forbidden.Inc()
		return writeError(w, http.StatusForbidden, codePhoneRequired, "bind a phone number first (POST "+h.paths.phone+")")
	}

	// The token is for us only: the upstream gets the identity instead, and
	// a leaked upstream log then grants nothing.
	delete(r.Header, "Authorization") // the key is canonical: skip Del's canonicalisation
	h.headers.set(r, sess.User)
	h.metrics.authorized.Inc()
	return next.ServeHTTP(w, r)
}

// unauthenticated answers 401. invalidToken adds RFC 6750's error
// parameter when a token was sent, so clients know to log in again.
func (h *Handler) unauthenticated(w http.ResponseWriter, invalidToken bool) error {
	msg := "missing bearer token: log in first (POST " + h.paths.login + ")"
	if invalidToken {
		w.Header().Set("WWW-Authenticate", wwwAuthenticateInvalid)
		msg = "invalid or expired token: log in again (POST " + h.paths.login + ")"
	}
	return writeError(w, http.StatusUnauthorized, codeUnauthenticated, msg)
}

// authenticatedHandler serves an endpoint for a logged-in user.
type authenticatedHandler func(w http.ResponseWriter, r *http.Request, th store.TokenHash, sess store.Session) error

// authenticated wraps an endpoint that needs a valid bearer token. It
// looks the token up fresh: these endpoints read the newest record.
func (h *Handler) authenticated(serve authenticatedHandler) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		th, sess, present, err := h.lookup(r, true)
		if errors.Is(err, store.ErrNotFound) {
			return h.unauthenticated(w, present)
		}
		if err != nil {
			return h.storeFailed(w, "lookup", err)
		}
		delete(r.Header, "Authorization")
		h.headers.set(r, sess.User)
		return serve(w, r, th, sess)
	}
}
