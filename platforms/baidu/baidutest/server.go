package baidutest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
)

// API names one Baidu API of the fake, for the per-API knobs and counters.
type API string

// APICode2Session is POST /oauth/jscode2sessionkey.
const APICode2Session API = "jscode2sessionkey"

// Fake is a fake Baidu server API for one app. It implements
// http.Handler. All its methods are safe for concurrent use.
type Fake struct {
	appKey string
	secret string
	knobs  *fakeplatform.Knobs[API, string] // failures are OAuth error codes

	mu    sync.Mutex
	users fakeplatform.Users[user]
}

type user struct {
	sessionKey string
	mobile     string // "" means the default
}

// New returns a Fake for the app whose App Key is appKey and App Secret
// secret. Nothing is listening: serve it, or use NewServer.
func New(appKey, secret string) *Fake {
	return &Fake{
		appKey: appKey,
		secret: secret,
		knobs:  fakeplatform.NewKnobs[API, string](),
	}
}

// Server is a Fake listening on a loopback address, like httptest.Server.
type Server struct {
	*Fake
	// URL is the API base, e.g. "http://127.0.0.1:34567", with no
	// trailing slash.
	URL string

	srv *httptest.Server
}

// NewServer starts a Fake for appKey/secret. Close it when done.
func NewServer(appKey, secret string) *Server {
	f := New(appKey, secret)
	s := httptest.NewServer(f)
	return &Server{Fake: f, URL: s.URL, srv: s}
}

// Close shuts the server down; it blocks until outstanding requests have
// completed (slow answers end as soon as their client goes away).
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AppKey returns the App Key the fake accepts as client_id.
func (f *Fake) AppKey() string { return f.appKey }

// FailNext makes the next n calls of api answer the OAuth error code
// (e.g. "invalid_grant", "invalid_client") with HTTP 400, without doing
// anything (a failed login does not use up its code). n <= 0 cancels it.
// A RespondNext for the same api is served first.
func (f *Fake) FailNext(api API, code string, n int) { f.knobs.FailNext(api, code, n) }

// RespondNext makes the next n calls of api answer with exactly status,
// Content-Type contentType and body. n <= 0 cancels it.
func (f *Fake) RespondNext(api API, n int, status int, contentType, body string) {
	f.knobs.RespondNext(api, n, status, contentType, body)
}

// SetDelay makes every call of api wait d before answering (0: no
// delay). The wait ends early, with no answer, when the client goes away.
func (f *Fake) SetDelay(api API, d time.Duration) { f.knobs.SetDelay(api, d) }

// Calls returns how many requests api has received, failed ones included.
func (f *Fake) Calls(api API) int { return f.knobs.Calls(api) }

// ServeHTTP serves Baidu's endpoint and the /_mock/ helpers.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/jscode2sessionkey":
		f.serveAPI(w, r, APICode2Session, f.code2Session)
	case "/_mock", "/_mock/":
		fakeplatform.ServeHelp(w, r, help)
	case "/_mock/seal_phone":
		fakeplatform.ServeSealPhone(w, r, f, ErrNoSession)
	case "/_mock/seal":
		fakeplatform.ServeSeal(w, r, f, ErrNoSession)
	default:
		http.NotFound(w, r)
	}
}

// answer is what an API handler decided: a JSON object, or an OAuth
// error.
type answer struct {
	code, desc string         // code "": success
	body       map[string]any // success body
}

func oauthError(code, desc string) answer { return answer{code: code, desc: desc} }

// serveAPI runs the part common to every API: counting, the knobs, the
// method check, and writing the answer.
func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, api API, h func(*http.Request) answer) {
	delay := f.knobs.Arrive(api)
	if _, ok := fakeplatform.ReadBody(w, r); !ok {
		return
	}
	code, failed, done := f.knobs.Due(w, r, api, delay)
	if done {
		return
	}
	var a answer
	switch {
	case failed:
		a = oauthError(code, "failure injected by baidutest")
	case r.Method != http.MethodPost:
		a = oauthError("invalid_request", "use POST")
	default:
		a = h(r)
	}
	w.Header().Set("Content-Type", "application/json")
	if a.code != "" {
		// Baidu's OAuth server answers its errors with 400 (its
		// error-code page shows "HTTP/1.1 400 Bad Request").
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": a.code, "error_description": a.desc})
		return
	}
	_ = json.NewEncoder(w).Encode(a.body)
}
