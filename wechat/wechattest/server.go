package wechattest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// API names one WeChat API of the fake, for the per-API knobs and counters.
type API string

// The WeChat APIs the fake serves.
const (
	APICode2Session API = "jscode2session"     // GET /sns/jscode2session
	APIStableToken  API = "stable_token"       // POST /cgi-bin/stable_token
	APIPhoneNumber  API = "getuserphonenumber" // POST /wxa/business/getuserphonenumber

	APICheckSession    API = "checksession"        // GET /wxa/checksession
	APIResetSessionKey API = "resetusersessionkey" // GET /wxa/resetusersessionkey
)

// DefaultTokenTTL is the life of an access token unless SetTokenTTL says
// otherwise: WeChat's 7200 s.
const DefaultTokenTTL = 7200 * time.Second

// maxForceRefresh is WeChat's daily quota of force_refresh calls.
const maxForceRefresh = 20

// Fake is a fake WeChat server API for one app. It implements
// http.Handler. All its methods are safe for concurrent use.
type Fake struct {
	appID  string
	secret string

	mu         sync.Mutex
	now        func() time.Time
	users      map[string]*user
	usedLogin  map[string]bool
	usedPhone  map[string]bool
	ccAsString bool
	phoneWMApp string // the watermark appid of phone_info; "" means ours
	fails      map[API]failure
	raws       map[API]rawAnswer
	delays     map[API]time.Duration
	calls      map[API]int
	tokens     map[string]*issued
	current    string // the token a plain stable_token hands out
	tokenTTL   time.Duration
	sticky     bool
	forced     int
}

type user struct {
	sessionKey string
	unionID    string
	phone      string // purePhoneNumber; "" means the default
	cc         string
}

type failure struct{ code, n int }

type rawAnswer struct {
	n                 int
	status            int
	contentType, body string
}

type issued struct {
	expiry  time.Time
	revoked bool
}

// New returns a Fake for the app appID with secret secret. Nothing is
// listening: serve it, or use NewServer.
func New(appID, secret string) *Fake {
	return &Fake{
		appID:     appID,
		secret:    secret,
		now:       time.Now,
		users:     map[string]*user{},
		usedLogin: map[string]bool{},
		usedPhone: map[string]bool{},
		fails:     map[API]failure{},
		raws:      map[API]rawAnswer{},
		delays:    map[API]time.Duration{},
		calls:     map[API]int{},
		tokens:    map[string]*issued{},
		tokenTTL:  DefaultTokenTTL,
	}
}

// Server is a Fake listening on a loopback address, like
// httptest.Server.
type Server struct {
	*Fake
	// URL is the API base, e.g. "http://127.0.0.1:34567", with no
	// trailing slash.
	URL string

	srv *httptest.Server
}

// NewServer starts a Fake for appID/secret. Close it when done.
func NewServer(appID, secret string) *Server {
	f := New(appID, secret)
	s := httptest.NewServer(f)
	return &Server{Fake: f, URL: s.URL, srv: s}
}

// Close shuts the server down; it blocks until outstanding requests have
// completed (slow answers end as soon as their client goes away).
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// AppID returns the app id the fake accepts.
func (f *Fake) AppID() string { return f.appID }

// SetClock sets the fake's clock (default time.Now): token expiry and
// watermark timestamps follow it.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	f.now = now
}

// FailNext makes the next n calls of api answer {"errcode": errcode,
// "errmsg": ...} instead of doing anything (a failed login does not use up
// its code). It replaces any earlier FailNext for api; n <= 0 cancels it.
// A RespondNext for the same api is served first.
func (f *Fake) FailNext(api API, errcode int, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		delete(f.fails, api)
		return
	}
	f.fails[api] = failure{code: errcode, n: n}
}

// RespondNext makes the next n calls of api answer with exactly status,
// Content-Type contentType and body: HTML, truncated JSON, a 502... It
// replaces any earlier RespondNext for api; n <= 0 cancels it.
func (f *Fake) RespondNext(api API, n int, status int, contentType, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		delete(f.raws, api)
		return
	}
	f.raws[api] = rawAnswer{n: n, status: status, contentType: contentType, body: body}
}

// SetDelay makes every call of api wait d before answering (0: no delay).
// The wait ends early, with no answer, when the client goes away, so a
// test that times out does not hold the server up.
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

// ServeHTTP serves the WeChat endpoints and the /_mock/ helpers.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sns/jscode2session":
		f.serveAPI(w, r, APICode2Session, http.MethodGet, f.code2Session)
	case "/cgi-bin/stable_token":
		f.serveAPI(w, r, APIStableToken, http.MethodPost, f.stableToken)
	case "/wxa/business/getuserphonenumber":
		f.serveAPI(w, r, APIPhoneNumber, http.MethodPost, f.phoneNumber)
	case "/wxa/checksession":
		f.serveAPI(w, r, APICheckSession, http.MethodGet, f.checkSession)
	case "/wxa/resetusersessionkey":
		f.serveAPI(w, r, APIResetSessionKey, http.MethodGet, f.resetSessionKey)
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

// answer is what an API handler decided: a JSON object, or an errcode.
type answer struct {
	code int            // 0: success
	body map[string]any // success body
}

func fail(code int) answer { return answer{code: code} }

// serveAPI runs the part common to every WeChat API: counting, the
// knobs, the method check, and writing the answer the way WeChat does
// (HTTP 200 even for errors).
func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, api API, method string, h func(*http.Request) answer) {
	f.mu.Lock()
	f.calls[api]++
	delay := f.delays[api]
	f.mu.Unlock()

	// Read the body first: net/http notices that a client went away
	// only once the request body has been consumed, and a slow answer
	// must end as soon as its client gives up.
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

	// Knobs are consumed only by calls that get an answer: a call whose
	// client gave up during the delay leaves them for the next one.
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

	// jscode2session really does say text/plain.
	ctype := "application/json; encoding=utf-8"
	if api == APICode2Session {
		ctype = "text/plain"
	}
	var a answer
	switch {
	case hasRaw:
		if raw.contentType != "" {
			w.Header().Set("Content-Type", raw.contentType)
		}
		w.WriteHeader(raw.status)
		_, _ = w.Write([]byte(raw.body))
		return
	case hasFail:
		a = fail(fl.code)
	case r.Method != method && method == http.MethodGet:
		a = fail(43001) // require GET method
	case r.Method != method:
		a = fail(43002) // require POST method
	default:
		a = h(r)
	}
	out := a.body
	if a.code != 0 {
		out = map[string]any{"errcode": a.code, "errmsg": errmsg(a.code) + ", rid: " + rid()}
	}
	w.Header().Set("Content-Type", ctype)
	_ = json.NewEncoder(w).Encode(out)
}

// errmsg is WeChat's message for code (without the rid WeChat appends).
func errmsg(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40029:
		return "invalid code"
	case 40125:
		return "invalid appsecret"
	case 40163:
		return "code been used"
	case 40226:
		return "high risk user"
	case 41001:
		return "access_token missing"
	case 41008:
		return "missing code"
	case 41009:
		return "missing openid"
	case 42001:
		return "access_token expired"
	case 43001:
		return "require GET method"
	case 43002:
		return "require POST method"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit  mustslower  retry next minute"
	case 47001:
		return "data format error"
	case 87008:
		return "invalid sig_method"
	case 87009:
		return "invalid signature"
	default:
		return "error " + strconv.Itoa(code)
	}
}

// rid imitates the request id WeChat appends to every errmsg, so that
// tests can check it never reaches a user.
func rid() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:16] + "-" + h[16:]
}
