package fakeplatform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in, and so has no session key to seal with.
var ErrNoSession = errors.New("fake: user has no session key (never logged in)")

// LoginRequest is what a Platform read from a login request.
type LoginRequest struct {
	AppID, Secret, Code, AnonymousCode string
}

// Login is a successful login, for Platform.Success to shape.
type Login struct {
	OpenID, UnionID, SessionKey, AnonymousOpenID string
}

// Codes are the platform's errcodes for the refusals the fake makes.
type Codes struct {
	AppID, Secret, EmptyCode, BadCode, UsedCode int
}

// Platform is what differs between the fakes.
type Platform struct {
	// Name prefixes the fake's errors and openids, e.g. "qq".
	Name string
	// Method and Path of the login API.
	Method, Path string
	// ContentType of the platform's answers.
	ContentType string
	// Read reads a login request; a non-zero code refuses it as is.
	Read func(r *http.Request) (LoginRequest, int)
	// Success is the body of a successful login.
	Success func(Login) any
	// Failure is the body of a refusal with errcode code.
	Failure func(code int) any
	// Codes the fake answers with.
	Codes Codes
	// OpenID turns a digest of (app, user) into the platform's openid
	// format.
	OpenID func(sum [32]byte) string
	// Help is served at / and /_mock/.
	Help string
}

type user struct {
	sessionKey, unionID, phone, cc string
}

type raw struct {
	status            int
	contentType, body string
}

// Fake is a fake platform server API for one app. It is an http.Handler.
type Fake struct {
	p      Platform
	appID  string
	secret string

	mu    sync.Mutex
	users Users[user]
	fails []int
	raws  []raw
	delay time.Duration
	calls int
	now   func() time.Time
}

// New returns a Fake of p for the app appID with secret secret.
func New(p Platform, appID, secret string) *Fake {
	return &Fake{p: p, appID: appID, secret: secret, now: time.Now}
}

// Server is a Fake listening on a loopback port.
type Server struct {
	*Fake
	// URL is the base URL of the server, for the client's WithBaseURL.
	URL string
	srv *httptest.Server
}

// NewServer starts a Fake of p on a loopback port. Close it when done.
func NewServer(p Platform, appID, secret string) *Server {
	f := New(p, appID, secret)
	srv := httptest.NewServer(f)
	return &Server{Fake: f, URL: srv.URL, srv: srv}
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// AppID returns the fake's app id.
func (f *Fake) AppID() string { return f.appID }

// SetClock sets the clock of the watermark timestamps (default time.Now).
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now != nil {
		f.now = now
	}
}

// FailNext makes the next n logins fail with errcode, in the platform's
// error envelope.
func (f *Fake) FailNext(errcode, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ; n > 0; n-- {
		f.fails = append(f.fails, errcode)
	}
}

// RespondNext makes the next n logins answer exactly status, contentType
// and body, for malformed answers.
func (f *Fake) RespondNext(n, status int, contentType, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ; n > 0; n-- {
		f.raws = append(f.raws, raw{status, contentType, body})
	}
}

// SetDelay delays every login answer by d (0: none), or until the client
// gives up.
func (f *Fake) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Calls returns the number of login requests served so far.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// OpenID returns user's openid in this app: the same for the same (app,
// user) in every fake of the platform.
func (f *Fake) OpenID(user string) string {
	return f.p.OpenID(sha256.Sum256([]byte(f.p.Name + "\x00" + f.appID + "\x00" + user)))
}

// AnonymousOpenID returns the openid the fake gives an anonymous code.
func (f *Fake) AnonymousOpenID(user string) string { return f.OpenID("anonymous\x00" + user) }

// SessionKey returns user's current session key, or "" if the user never
// logged in.
func (f *Fake) SessionKey(user string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.users.Find(user); u != nil {
		return u.sessionKey
	}
	return ""
}

// SetUnionID gives user a unionid, sent by every later login; "" removes
// it.
func (f *Fake) SetUnionID(user, unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users.Get(user).unionID = unionID
}

// SetPhone sets user's number (without country code) and country code.
// By default a user has 138 and 8 digits derived from the name, "86".
func (f *Fake) SetPhone(user, purePhone, countryCode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users.Get(user)
	u.phone, u.cc = purePhone, countryCode
}

// Seal encrypts payload the way the mini program receives open data:
// payload plus "watermark": {"appid", "timestamp"} (unless payload has a
// watermark key, kept as given), PKCS#7, AES-128-CBC under user's current
// session key, random IV, both standard base64.
func (f *Fake) Seal(user string, payload map[string]any) (encryptedData, iv string, err error) {
	f.mu.Lock()
	key := ""
	if u := f.users.Find(user); u != nil {
		key = u.sessionKey
	}
	now := f.now()
	f.mu.Unlock()
	if key == "" {
		return "", "", fmt.Errorf("%w: %q", ErrNoSession, user)
	}
	p := maps.Clone(payload)
	if p == nil {
		p = map[string]any{}
	}
	if _, ok := p["watermark"]; !ok {
		p["watermark"] = map[string]any{"appid": f.appID, "timestamp": now.Unix()}
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return "", "", fmt.Errorf("%s: payload is not JSON: %w", f.p.Name, err)
	}
	return wechattest.SealWithKey(key, plain)
}

// SealPhone seals the legacy getPhoneNumber payload for user:
// phoneNumber, purePhoneNumber, countryCode (a string) and the watermark.
func (f *Fake) SealPhone(user string) (encryptedData, iv string, err error) {
	f.mu.Lock()
	u := f.users.Get(user)
	pure, cc := u.phone, u.cc
	f.mu.Unlock()
	if pure == "" {
		pure = DefaultPhone("138", user)
	}
	if cc == "" {
		cc = "86"
	}
	display := pure
	if cc != "86" {
		display = "+" + cc + " " + pure
	}
	return f.Seal(user, map[string]any{"phoneNumber": display, "purePhoneNumber": pure, "countryCode": cc})
}

// ServeHTTP serves the login API and the /_mock/ helpers.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case f.p.Path:
		f.serveLogin(w, r)
	case "/_mock/seal_phone":
		f.serveSealPhone(w, r)
	case "/_mock/seal":
		f.serveSeal(w, r)
	case "/", "/_mock/", "/_mock":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, f.p.Help)
	default:
		http.NotFound(w, r)
	}
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if r.Method != f.p.Method {
		w.Header().Set("Allow", f.p.Method)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	if len(f.raws) > 0 {
		a := f.raws[0]
		f.raws = f.raws[1:]
		f.mu.Unlock()
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
		return
	}
	body := f.login(r)
	f.mu.Unlock()
	w.Header().Set("Content-Type", f.p.ContentType)
	_ = json.NewEncoder(w).Encode(body)
}

// login answers one login request. f.mu must be held.
func (f *Fake) login(r *http.Request) any {
	if len(f.fails) > 0 {
		code := f.fails[0]
		f.fails = f.fails[1:]
		return f.p.Failure(code)
	}
	req, code := f.p.Read(r)
	c := f.p.Codes
	switch {
	case code != 0:
	case req.AppID != f.appID:
		code = c.AppID
	case req.Secret != f.secret:
		code = c.Secret
	case req.Code == "":
		code = c.EmptyCode
	}
	if code != 0 {
		return f.p.Failure(code)
	}
	name, err := f.users.Redeem(req.Code)
	switch {
	case errors.Is(err, ErrBadCode):
		return f.p.Failure(c.BadCode)
	case err != nil:
		return f.p.Failure(c.UsedCode)
	}
	u := f.users.Get(name)
	u.sessionKey = NewSessionKey(16)
	l := Login{OpenID: f.OpenID(name), UnionID: u.unionID, SessionKey: u.sessionKey}
	if req.AnonymousCode != "" {
		l.AnonymousOpenID = f.AnonymousOpenID(strings.SplitN(req.AnonymousCode, ":", 2)[0])
	}
	return f.p.Success(l)
}

// HexOpenID is an OpenID format: the first n bytes of the digest in
// upper-case hex, after prefix.
func HexOpenID(prefix string, n int) func([32]byte) string {
	return func(sum [32]byte) string { return prefix + strings.ToUpper(hex.EncodeToString(sum[:n])) }
}
