package caddymodule

// The test harness of the package, in three parts:
//
//   - the in-process gateway: caddytest's Caddy on localhost:9080 (admin on
//     localhost:2999), one testApp per WeChat app, each with its own
//     wechattest fake and an echoing upstream, and the request helpers
//     (do, postJSON, login, upstreamHeaders, expectError, adminDo);
//   - a Handler provisioned without Caddy's server, for benchmarks and
//     allocation pins (benchHandler, fillSessions, discardWriter);
//   - raw HTTP over TCP, for what Go's own client would not send, and an
//     upstream that reports what it received (received, rawHTTP, through).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// The in-process Caddy of caddytest listens here; only this package starts
// it, and its tests run one after another.
const (
	gatewayBase = "http://localhost:9080"
	testSecret  = "test-app-secret-must-never-leak-0123456789"
)

var appSeq atomic.Int64

// testApp is one WeChat app (a fake WeChat server and a unique app id)
// behind the in-process Caddy.
type testApp struct {
	t        *testing.T
	tester   *caddytest.Tester
	fake     *wechattest.Server
	appID    string
	upstream string // URL of the echoing upstream
	client   *http.Client
	base     string // default gatewayBase
}

// newApp makes a fresh app: its own app id, a fake WeChat that knows it,
// and an echoing upstream. Nothing is loaded into Caddy yet: see site and
// load.
func newApp(t *testing.T) *testApp {
	t.Helper()
	appID := newAppID()
	fake := wechattest.NewServer(appID, testSecret)
	t.Cleanup(fake.Close)
	return &testApp{
		t:        t,
		tester:   caddytest.NewTester(t),
		fake:     fake,
		appID:    appID,
		upstream: echoUpstream(t).URL,
		client:   &http.Client{Timeout: 10 * time.Second},
	}
}

// site is the app's gateway site on localhost:9080; extra goes inside the
// wechat_auth block.
func (a *testApp) site(extra string) string {
	return gatewaySite(a.appID, a.fake.URL, extra, a.upstream)
}

// load (re)loads the in-process Caddy with cfg.
func (a *testApp) load(cfg string) { a.tester.InitServer(cfg, "caddyfile") }

// on returns the same app reached through another base URL.
func (a *testApp) on(base string) *testApp {
	b := *a
	b.base = base
	return &b
}

// otherHost moves a gateway site from localhost:9080 to 127.0.0.1:9080, so
// that two sites of one config can be told apart.
func otherHost(site string) string {
	return strings.Replace(site, "http://localhost:9080", "http://127.0.0.1:9080", 1)
}

// newAppID gives every test its own app, so that the sessions the memory
// store keeps across config loads never leak from one test to the next.
func newAppID() string { return fmt.Sprintf("wx%016x", 0x7e57<<32|appSeq.Add(1)) }

// echoUpstream answers with the request headers it received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// globalOptions are the global options every config of the in-process
// Caddy starts with: fixed ports, a short grace period, no trust store.
func globalOptions() string {
	return `{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ms
	skip_install_trust
}
`
}

// startGateway loads a config with one gateway site for a fresh app, in
// front of an echoing upstream. extra goes inside the wechat_auth block.
func startGateway(t *testing.T, extra string) *testApp {
	t.Helper()
	a := newApp(t)
	a.load(globalOptions() + a.site(extra))
	return a
}

// gatewaySite is a site on localhost:9080 whose wechat_auth (extra
// inside it) guards a reverse_proxy to upstream, with the identity
// placeholders copied into request headers the upstream echoes.
func gatewaySite(appID, apiBase, extra, upstream string) string {
	return fmt.Sprintf(`
http://localhost:9080 {
	wechat_auth {
		app_id %s
		app_secret %s
		api_base %s
		timeout 2s
		%s
	}
	request_header X-Placeholder-User {http.auth.user.id}
	request_header X-Placeholder-Phone {http.auth.user.phone}
	request_header X-Placeholder-AppID {http.auth.user.appid}
	reverse_proxy %s
}
`, appID, testSecret, apiBase, extra, strings.TrimPrefix(upstream, "http://"))
}

// response is a decoded answer of the gateway.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends one request to the gateway (token, when set, as a Bearer
// token; headers as name, value pairs) and decodes the answer.
func (a *testApp) do(method, path, token, contentType string, body io.Reader, headers ...string) response {
	a.t.Helper()
	base := a.base
	if base == "" {
		base = gatewayBase
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	return r
}

// postJSON posts v as JSON.
func (a *testApp) postJSON(path, token string, v any) response {
	a.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.do(http.MethodPost, path, token, "application/json", bytes.NewReader(b))
}

// login logs user in with a fresh code and returns the token.
func (a *testApp) login(code string) string {
	a.t.Helper()
	r := a.postJSON("/wechat/login", "", map[string]string{"code": code})
	if r.status != http.StatusOK {
		a.t.Fatalf("login %q: %d %s", code, r.status, r.raw)
	}
	tok, _ := r.body["token"].(string)
	if len(tok) != tokenLength {
		a.t.Fatalf("login %q: bad token %q", code, tok)
	}
	return tok
}

// upstreamHeaders calls the upstream through the gateway and returns the
// headers the upstream received.
func (a *testApp) upstreamHeaders(token string, headers ...string) (int, http.Header) {
	a.t.Helper()
	r := a.do(http.MethodGet, "/api/profile", token, "", nil, headers...)
	if r.status != http.StatusOK {
		return r.status, nil
	}
	h := http.Header{}
	hm, _ := r.body["headers"].(map[string]any)
	for k, vs := range hm {
		for _, v := range vs.([]any) {
			h.Add(k, v.(string))
		}
	}
	return r.status, h
}

// expectError checks an error answer: its status and code, a message, a
// JSON body, and no app secret in it.
func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
	if got, _ := r.body["error"].(string); got != code {
		t.Fatalf("error = %q, want %q (body %s)", got, code, r.raw)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Fatalf("error without message: %s", r.raw)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error Content-Type = %q", r.header.Get("Content-Type"))
	}
	if strings.Contains(r.raw, testSecret) {
		t.Fatalf("the app secret leaked into an answer: %s", r.raw)
	}
}

// adminBase is the in-process Caddy's admin endpoint (see globalOptions).
const adminBase = "http://localhost:2999"

// adminDo calls the admin API and returns the status and the body.
func adminDo(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, adminBase+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// benchAppSeq numbers the apps of benchHandler, apart from the apps of
// the in-process gateway.
var benchAppSeq atomic.Int64

// benchHandler provisions a real Handler (memory store, metrics, WeChat
// client pointed at a wechattest fake) the way Caddy would, with a no-op
// logger so that log lines do not end up on the benchmark's output.
func benchHandler(b testing.TB, maxSessions int) (*Handler, *wechattest.Server) {
	b.Helper()
	return benchHandlerWithStore(b, fmt.Sprintf(`{"backend":"memory","max_sessions":%d}`, maxSessions))
}

// benchHandlerWithStore is benchHandler with any store config.
func benchHandlerWithStore(b testing.TB, storeJSON string) (*Handler, *wechattest.Server) {
	b.Helper()
	appID := fmt.Sprintf("wx%016x", 0xbe0c<<32|benchAppSeq.Add(1))
	fake := wechattest.NewServer(appID, testSecret)
	b.Cleanup(fake.Close)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel) // Cleanup of the handler and its store module
	h := &Handler{
		AppID:     appID,
		AppSecret: testSecret,
		APIBase:   fake.URL,
		StoreRaw:  json.RawMessage(storeJSON),
	}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Cleanup() })
	h.logger = zap.NewNop()
	return h, fake
}

// benchUser is a distinct user with WeChat-shaped identifiers: a 28
// character openid and a 24 character (base64 of 16 bytes) session_key.
func benchUser(i int) store.User {
	var key [16]byte
	_, _ = rand.Read(key[:])
	return store.User{
		OpenID:     fmt.Sprintf("o%027d", i),
		SessionKey: base64.StdEncoding.EncodeToString(key[:]),
	}
}

// fillSessions gives the store n live sessions of n distinct users and
// returns the tokens of up to sample of them, spread over the whole set.
func fillSessions(b testing.TB, s store.Store, n, sample int) []string {
	b.Helper()
	ctx := context.Background()
	every := max(n/sample, 1)
	var tokens []string
	for i := range n {
		var th store.TokenHash
		if i%every == 0 && len(tokens) < sample {
			tok, err := newToken()
			if err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, tok)
			th = store.HashToken(tok)
		} else {
			// Only the hash reaches the store: skip the base64 step.
			_, _ = rand.Read(th[:])
		}
		if _, err := s.CreateSession(ctx, th, benchUser(i), time.Hour, 0); err != nil {
			b.Fatal(err)
		}
	}
	return tokens
}

// nopNext is the next handler: it does nothing, so the benchmark measures
// wechat_auth alone.
var nopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// discardWriter is a ResponseWriter that keeps nothing; the pass-through
// never writes to it.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// cmpOr is s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
