package baidutest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
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

	mu     sync.Mutex
	users  map[string]*user
	used   map[string]bool
	fails  map[API]failure
	raws   map[API]rawAnswer
	delays map[API]time.Duration
	calls  map[API]int
}

type user struct {
	sessionKey string
	mobile     string // "" means the default
}

type failure struct {
	code string
	n    int
}

type rawAnswer struct {
	n                 int
	status            int
	contentType, body string
}

// New returns a Fake for the app whose App Key is appKey and App Secret
// secret. Nothing is listening: serve it, or use NewServer.
func New(appKey, secret string) *Fake {
	return &Fake{
		appKey: appKey,
		secret: secret,
		users:  map[string]*user{},
		used:   map[string]bool{},
		fails:  map[API]failure{},
		raws:   map[API]rawAnswer{},
		delays: map[API]time.Duration{},
		calls:  map[API]int{},
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
func (f *Fake) FailNext(api API, code string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		delete(f.fails, api)
		return
	}
	f.fails[api] = failure{code: code, n: n}
}

// RespondNext makes the next n calls of api answer with exactly status,
// Content-Type contentType and body. n <= 0 cancels it.
func (f *Fake) RespondNext(api API, n int, status int, contentType, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		delete(f.raws, api)
		return
	}
	f.raws[api] = rawAnswer{n: n, status: status, contentType: contentType, body: body}
}

// SetDelay makes every call of api wait d before answering (0: no
// delay). The wait ends early, with no answer, when the client goes away.
func (f *Fake) SetDelay(api API, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays[api] = d
}

// Calls returns how many requests api has received, failed ones included.
func (f *Fake) Calls(api API) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[api]
}

// ServeHTTP serves Baidu's endpoint and the /_mock/ helpers.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/jscode2sessionkey":
		f.serveAPI(w, r, APICode2Session, f.code2Session)
	case "/_mock", "/_mock/":
		serveHelp(w, r)
	case "/_mock/seal_phone":
		f.serveSealPhone(w, r)
	case "/_mock/seal":
		f.serveSeal(w, r)
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
	f.mu.Lock()
	f.calls[api]++
	delay := f.delays[api]
	f.mu.Unlock()

	// Read the body first: net/http notices a client that went away only
	// once the body has been consumed.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	f.mu.Lock()
	raw, hasRaw := f.raws[api]
	if hasRaw {
		if raw.n--; raw.n <= 0 {
			delete(f.raws, api)
		} else {
			f.raws[api] = raw
		}
	}
	fl, hasFail := f.fails[api]
	if !hasRaw && hasFail {
		if fl.n--; fl.n <= 0 {
			delete(f.fails, api)
		} else {
			f.fails[api] = fl
		}
	}
	f.mu.Unlock()

	var a answer
	switch {
	case hasRaw:
		w.Header().Set("Content-Type", raw.contentType)
		w.WriteHeader(raw.status)
		_, _ = io.WriteString(w, raw.body)
		return
	case hasFail:
		a = oauthError(fl.code, "failure injected by baidutest")
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
