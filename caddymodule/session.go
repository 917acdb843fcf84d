package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// A session token is 256 random bits in unpadded base64url: 43 characters.
const (
	tokenBytes  = 32
	tokenLength = 43
)

// newToken returns a fresh session token. 256 bits from the system CSPRNG
// make guessing any live token hopeless, however many there are.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// bearerToken extracts the token of an Authorization: Bearer header.
// present reports whether the client sent any Authorization header at all
// (an unusable one is treated as an invalid token, not as none).
func bearerToken(r *http.Request) (token string, present bool) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", false
	}
	const scheme = "bearer "
	if len(auth) <= len(scheme) || !strings.EqualFold(auth[:len(scheme)], scheme) {
		return "", true
	}
	token = auth[len(scheme):]
	if !wellFormedToken(token) {
		return "", true
	}
	return token, true
}

// wellFormedToken rejects anything that cannot be one of our tokens before
// it is hashed and looked up, so junk never reaches the store.
func wellFormedToken(t string) bool {
	if len(t) != tokenLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// lookup resolves the request's bearer token. It returns ErrNotFound for a
// missing, malformed, unknown or expired token, and any other error when
// the store failed.
//
// fresh asks the store to skip any local cache (the Redis store keeps
// validated look-ups for cache_ttl): the endpoints that decrypt need the
// newest session_key, which a login through another gateway may just have
// rotated.
func (h *Handler) lookup(r *http.Request, fresh bool) (TokenHash, Session, bool, error) {
	token, present := bearerToken(r)
	if token == "" {
		return TokenHash{}, Session{}, present, ErrNotFound
	}
	th := HashToken(token)
	ctx := r.Context()
	if fresh {
		ctx = withFreshLookup(ctx)
	}
	sess, err := h.store.Lookup(ctx, th)
	if err != nil {
		return th, Session{}, true, err
	}
	// Expiry is the store's job (Store.Lookup answers ErrNotFound for an
	// expired session, which the conformance suite checks for each store),
	// so the hot path reads the clock once, not twice.
	return th, sess, true, nil
}

// passThrough authenticates a request that is not for one of the
// endpoints and hands it to the next handler.
func (h *Handler) passThrough(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	_, sess, present, err := h.lookup(r, false)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		if !present && h.Mode == ModeOptional {
			h.metrics.anonymous.Inc()
			return next.ServeHTTP(w, r)
		}
		h.metrics.unauthenticated.Inc()
		return h.unauthenticated(w, present)
	default:
		h.metrics.storeError.Inc()
		h.logger.Error("session store failed", zap.Error(err))
		return writeStoreError(w)
	}

	if h.RequirePhone && sess.User.Phone == "" {
		h.metrics.forbidden.Inc()
		return writeError(w, http.StatusForbidden, codePhoneRequired, "bind a phone number first (POST "+h.pathPhone+")")
	}

	// The token is for us only: the upstream gets the identity instead, and
	// a leaked upstream log then grants nothing.
	delete(r.Header, "Authorization") // the key is canonical: skip Del's canonicalisation
	h.setIdentity(r, sess.User)
	h.metrics.authorized.Inc()
	return next.ServeHTTP(w, r)
}

// setIdentity sets the identity headers and placeholders of a user. It
// is on the hot path, so it makes one allocation, the header write
// itself: the values share one backing array, the names are canonical
// already, and the placeholders point into that same array.
func (h *Handler) setIdentity(r *http.Request, u User) {
	n := 2
	if u.UnionID != "" {
		n++
	}
	if u.Phone != "" {
		n += 2
	}
	// cap == n: appends never move the array, so &vals[i] stays valid.
	vals := make([]string, 0, n)
	vals = setHeader(r.Header, vals, h.canonOpenID, u.OpenID)
	openID, unionID, phone := placeholder(vals, 0), any(""), any("")
	if u.UnionID != "" {
		vals = setHeader(r.Header, vals, h.canonUnionID, u.UnionID)
		unionID = placeholder(vals, len(vals)-1)
	}
	if u.Phone != "" {
		vals = setHeader(r.Header, vals, h.canonPhone, u.Phone)
		phone = placeholder(vals, len(vals)-1)
		if u.CountryCode != "" {
			vals = setHeader(r.Header, vals, h.canonCountryCode, u.CountryCode)
		}
	}
	setHeader(r.Header, vals, h.canonAppID, h.client.AppID())

	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", openID)
		repl.Set("http.auth.user.unionid", unionID)
		repl.Set("http.auth.user.phone", phone)
		repl.Set("http.auth.user.appid", h.appIDValue)
	}
}

// placeholderRef is a placeholder value read from a string kept elsewhere.
// Caddy turns placeholder values into text through fmt.Stringer, and a
// pointer fits in an interface without an allocation, where a string
// would be copied to the heap on every request.
type placeholderRef string

func (p *placeholderRef) String() string { return string(*p) }

// placeholder is the placeholder value of vals[i].
func placeholder(vals []string, i int) any { return (*placeholderRef)(&vals[i]) }

// setHeader sets header[name] (name already canonical) to value, taking
// the value slice from vals. Each slice is capped at its own length, so a
// later append by another handler to one header reallocates instead of
// overwriting the next header's value.
func setHeader(header http.Header, vals []string, name, value string) []string {
	i := len(vals)
	vals = append(vals, value)
	header[name] = vals[i : i+1 : i+1]
	return vals
}

// unauthenticated answers 401. invalidToken adds RFC 6750's error
// parameter when a token was sent, so clients know to log in again.
func (h *Handler) unauthenticated(w http.ResponseWriter, invalidToken bool) error {
	msg := "missing bearer token: log in first (POST " + h.pathLogin + ")"
	if invalidToken {
		w.Header().Set("WWW-Authenticate", wwwAuthenticateInvalid)
		msg = "invalid or expired token: log in again (POST " + h.pathLogin + ")"
	}
	return writeError(w, http.StatusUnauthorized, codeUnauthenticated, msg)
}

// authenticatedHandler serves an endpoint for a logged-in user.
type authenticatedHandler func(w http.ResponseWriter, r *http.Request, th TokenHash, sess Session) error

// authenticated wraps an endpoint that needs a valid bearer token.
func (h *Handler) authenticated(serve authenticatedHandler) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		th, sess, present, err := h.lookup(r, true)
		if errors.Is(err, ErrNotFound) {
			return h.unauthenticated(w, present)
		}
		if err != nil {
			h.logger.Error("session store failed", zap.Error(err))
			return writeStoreError(w)
		}
		h.setIdentity(r, sess.User)
		return serve(w, r, th, sess)
	}
}

// sessionResponse is the answer of GET /session.
type sessionResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	HasPhone  bool   `json:"has_phone"`
	ExpiresIn int64  `json:"expires_in"`
}

func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request, _ TokenHash, sess Session) error {
	return writeJSON(w, http.StatusOK, sessionResponse{
		OpenID:    sess.User.OpenID,
		UnionID:   sess.User.UnionID,
		HasPhone:  sess.User.Phone != "",
		ExpiresIn: expiresIn(sess.ExpiresAt),
	})
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request, th TokenHash, sess Session) error {
	if err := h.store.DeleteSession(r.Context(), th); err != nil {
		h.logger.Error("session store failed", zap.Error(err))
		return writeStoreError(w)
	}
	h.logger.Info("logout", zap.String("openid", sess.User.OpenID))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// expiresIn is the whole seconds left until t, never negative.
func expiresIn(t time.Time) int64 {
	s := int64(time.Until(t) / time.Second)
	if s < 0 {
		return 0
	}
	return s
}

// stripIdentityHeaders removes every client-sent header that an upstream
// could read as one of ours. Servers disagree on header names: CGI, PHP and
// many frameworks turn both "-" and "_" into "_" and ignore case, so
// "x_wechat_openid" would reach a PHP app as HTTP_X_WECHAT_OPENID, the
// very variable our X-WeChat-OpenID becomes. Comparing names folded the
// same way closes that door, in every mode and for anonymous requests too.
func (h *Handler) stripIdentityHeaders(header http.Header) {
	for name := range header {
		for _, id := range h.identityHeaders {
			if foldedEqual(name, id) {
				delete(header, name)
				break
			}
		}
	}
}

// foldHeaderName lower-cases a header name and maps "_" to "-".
func foldHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

// foldedEqual compares name with an already folded name, without
// allocating.
func foldedEqual(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

func foldByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}
