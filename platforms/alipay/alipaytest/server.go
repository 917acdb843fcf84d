package alipaytest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
)

// API names one Alipay API of the fake, for the per-API knobs and
// counters.
type API string

// APICode2Session is alipay.system.oauth.token on POST /gateway.do.
const APICode2Session API = "alipay.system.oauth.token"

// Fake is a fake Alipay gateway for one app. It implements http.Handler.
// All its methods are safe for concurrent use.
type Fake struct {
	appID  string
	appPub *rsa.PublicKey
	key    *rsa.PrivateKey // "Alipay's" key
	aesKey []byte

	knobs *fakeplatform.Knobs[API, failure]

	mu       sync.Mutex
	openID   bool
	users    fakeplatform.Users[user]
	lastForm url.Values
}

// user is what the fake knows of a user besides its codes.
type user struct {
	mobile string // "" means the default
}

// failure is an error_response set by FailNext.
type failure struct{ code, subCode string }

// Option configures a Fake in New.
type Option func(*Fake)

// WithAlipayKey makes the fake sign with key instead of a key pair made
// at New (for a demo whose Alipay public key must be known in advance).
func WithAlipayKey(key *rsa.PrivateKey) Option {
	return func(f *Fake) {
		if key != nil {
			f.key = key
		}
	}
}

// WithAESKey sets the app's content key (16 bytes) instead of a random
// one made at New.
func WithAESKey(key []byte) Option {
	return func(f *Fake) {
		if len(key) == 16 {
			f.aesKey = bytes.Clone(key)
		}
	}
}

// New returns a Fake for the app appID whose requests are signed with the
// private half of appPublicKey. Unless options say otherwise it makes its
// own 2048-bit "Alipay" key pair and a random content key. Nothing is
// listening: serve it, or use NewServer. New panics only if the system's
// random source fails.
func New(appID string, appPublicKey *rsa.PublicKey, opts ...Option) *Fake {
	f := &Fake{
		appID:  appID,
		appPub: appPublicKey,
		openID: true,
		knobs:  fakeplatform.NewKnobs[API, failure](),
	}
	for _, o := range opts {
		o(f)
	}
	if f.key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("alipaytest: cannot make a key pair: " + err.Error())
		}
		f.key = k
	}
	if f.aesKey == nil {
		f.aesKey = make([]byte, 16)
		_, _ = rand.Read(f.aesKey)
	}
	return f
}

// Server is a Fake listening on a loopback address, like httptest.Server.
type Server struct {
	*Fake
	// URL is the gateway's base, e.g. "http://127.0.0.1:34567", with no
	// trailing slash.
	URL string

	srv *httptest.Server
}

// NewServer starts a Fake (see New). Close it when done.
func NewServer(appID string, appPublicKey *rsa.PublicKey, opts ...Option) *Server {
	f := New(appID, appPublicKey, opts...)
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

// AlipayPublicKey returns the public key the fake's answers verify with.
func (f *Fake) AlipayPublicKey() *rsa.PublicKey { return &f.key.PublicKey }

// AlipayPublicKeyPEM returns AlipayPublicKey as a PEM "PUBLIC KEY" block.
func (f *Fake) AlipayPublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// AESKey returns a copy of the app's content key (16 bytes).
func (f *Fake) AESKey() []byte { return bytes.Clone(f.aesKey) }

// SetOpenIDScheme chooses whether answers carry open_id (true, the
// default: apps on Alipay's open_id scheme) or user_id only (false).
func (f *Fake) SetOpenIDScheme(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.openID = on
}

// FailNext makes the next n calls of api answer a signed error_response
// with code and subCode (e.g. "40002", "isv.code-invalid"; "20000",
// "isp.unknow-error"), without doing anything (a failed call does not use
// up its code). n <= 0 cancels it. A RespondNext for the same api is
// served first.
func (f *Fake) FailNext(api API, code, subCode string, n int) {
	f.knobs.FailNext(api, failure{code, subCode}, n)
}

// RespondNext makes the next n calls of api answer with exactly status,
// Content-Type contentType and body (see AnswerBody to sign one). n <= 0
// cancels it.
func (f *Fake) RespondNext(api API, n int, status int, contentType, body string) {
	f.knobs.RespondNext(api, n, status, contentType, body)
}

// SetDelay makes every call of api wait d before answering (0: no
// delay). The wait ends early, with no answer, when the client goes away.
func (f *Fake) SetDelay(api API, d time.Duration) { f.knobs.SetDelay(api, d) }

// Calls returns how many requests api has received, failed ones included.
func (f *Fake) Calls(api API) int { return f.knobs.Calls(api) }

// LastForm returns a copy of the parameters of the last gateway request
// (query and form merged), or nil: for tests of what a client sends.
func (f *Fake) LastForm() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastForm == nil {
		return nil
	}
	out := url.Values{}
	for k, v := range f.lastForm {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// ServeHTTP serves the gateway and the /_mock/ helpers.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/gateway.do":
		f.serveGateway(w, r)
	case "/_mock", "/_mock/":
		fakeplatform.ServeHelp(w, r, help)
	case "/_mock/seal_phone":
		f.serveSealPhone(w, r)
	case "/_mock/alipay_public_key":
		f.servePublicKey(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveGateway runs the part common to every call: counting, the knobs,
// reading the parameters, and writing the answer.
func (f *Fake) serveGateway(w http.ResponseWriter, r *http.Request) {
	body, ok := fakeplatform.ReadBody(w, r)
	if !ok {
		return
	}
	params := requestParams(r, body)
	api := API(params.Get("method"))
	f.mu.Lock()
	f.lastForm = params
	f.mu.Unlock()
	fl, failed, done := f.knobs.Due(w, r, api, f.knobs.Arrive(api))
	if done {
		return
	}
	var a answer
	if failed {
		a = gatewayError(fl.code, fl.subCode)
	} else {
		a = f.handle(r.Method, params)
	}
	// Alipay answers 200 whatever happened, in UTF-8 JSON.
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = io.WriteString(w, f.body(params.Get("method"), a))
}

// requestParams merges the form body and the query string (a client may
// put the common parameters in either; the body wins). A duplicate
// parameter keeps its first value.
func requestParams(r *http.Request, body []byte) url.Values {
	out := url.Values{}
	form, _ := url.ParseQuery(string(body))
	if ct := r.Header.Get("Content-Type"); ct != "" && !bytes.HasPrefix([]byte(ct), []byte("application/x-www-form-urlencoded")) {
		form = url.Values{}
	}
	for _, src := range []url.Values{form, r.URL.Query()} {
		for k, v := range src {
			if _, ok := out[k]; !ok && len(v) > 0 {
				out[k] = []string{v[0]}
			}
		}
	}
	return out
}
