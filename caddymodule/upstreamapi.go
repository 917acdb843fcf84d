package caddymodule

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// What a wechat_auth block serves (Handler.Serve).
const (
	// ServeMiniProgram serves the mini program's endpoints (login, phone,
	// decrypt, session, logout) and passes every other request through
	// with the user's identity. The default.
	ServeMiniProgram = "miniprogram"
	// ServeUpstream serves the upstream API (signature, check_session)
	// and nothing else: every other request is answered 404, none is
	// passed on.
	ServeUpstream = "upstream"
)

// Endpoints of the upstream API, as counted in metrics.
const (
	upstreamSignature    = "signature"
	upstreamCheckSession = "check_session"
	upstreamOther        = "other"
)

// upstreamAPI is the state of a block that serves the upstream API: the
// endpoints that need a user's session key, done on the server for the
// services behind the gateway, which never see the key.
type upstreamAPI struct {
	signature, checkSession string // full paths
	checks                  *keyChecks
	requests                *prometheus.CounterVec
}

// checkServe checks the serve setting.
func checkServe(serve string) error {
	switch serve {
	case "", ServeMiniProgram, ServeUpstream:
		return nil
	}
	return fmt.Errorf("serve must be %s or %s, got %q", ServeMiniProgram, ServeUpstream, serve)
}

// newUpstreamAPI sets up the upstream API of h (after h's metrics).
func newUpstreamAPI(h *Handler) *upstreamAPI {
	prefix := strings.TrimRight(h.PathPrefix, "/")
	return &upstreamAPI{
		signature:    prefix + "/signature",
		checkSession: prefix + "/check_session",
		checks:       newKeyChecks(keyCheckTTL, maxKeyChecks),
		requests: registerOrReuse(h.metrics.registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name:        "upstream_requests_total",
			Help:        "Requests to the upstream API by endpoint (signature, check_session, other) and result (ok, valid, invalid, or the error code answered).",
			ConstLabels: h.metrics.labels,
		}, []string{"endpoint", "result"})),
	}
}

// count records one answer of the upstream API.
func (u *upstreamAPI) count(endpoint, result string) {
	u.requests.WithLabelValues(endpoint, result).Inc()
}

// serveUpstreamAPI is ServeHTTP of a block that serves the upstream API.
// It never calls the next handler: such a block is an API of its own,
// not a guard in front of one.
func (h *Handler) serveUpstreamAPI(w http.ResponseWriter, r *http.Request) error {
	u := h.upstream
	var endpoint string
	var serve func(http.ResponseWriter, *http.Request) error
	switch r.URL.Path {
	case u.signature:
		endpoint, serve = upstreamSignature, h.serveSignature
	case u.checkSession:
		endpoint, serve = upstreamCheckSession, h.serveCheckSession
	default:
		u.count(upstreamOther, codeNotFound)
		return writeError(w, http.StatusNotFound, codeNotFound,
			"this site serves the upstream API only: POST "+u.signature+" and POST "+u.checkSession)
	}
	if r.Method != http.MethodPost {
		u.count(endpoint, codeMethodNotAllowed)
	}
	return h.endpoint(w, r, http.MethodPost, serve)
}

// maxOpenIDLength bounds an openid posted to the upstream API (WeChat's
// are 28 characters).
const maxOpenIDLength = 128

// validOpenID: 1 to 128 characters of WeChat's openid alphabet (letters,
// digits, '-' and '_'), so that what reaches the store and WeChat is an
// openid and nothing else.
func validOpenID(s string) bool {
	if s == "" || len(s) > maxOpenIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
