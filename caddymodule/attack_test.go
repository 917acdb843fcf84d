package caddymodule

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// The header and trailer tricks of issue 15, over real sockets: raw TCP
// where Go's own client would rewrite what an attacker sends, and an
// HTTP/2 client for trailers. Every request goes through reverse_proxy to
// an upstream that reports what it received, headers and trailers alike.

// received is what the reporting upstream saw.
type received struct {
	Headers  http.Header `json:"headers"`
	Trailers http.Header `json:"trailers"`
	Body     string      `json:"body"`
}

// reportingUpstream reads the whole body (trailers arrive after it) and
// answers with the headers, trailers and body it received.
func reportingUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(received{Headers: r.Header, Trailers: r.Trailer, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startReporting starts a gateway site (extra inside wechat_auth) in
// front of a reporting upstream.
func startReporting(t *testing.T, extra string) *testApp {
	t.Helper()
	a := newApp(t)
	a.upstream = reportingUpstream(t).URL
	a.load(globalOptions() + a.site(extra))
	return a
}

// rawHTTP sends raw (lines joined with CRLF, as written) on a new TCP
// connection to addr and reads one response.
func rawHTTP(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// crlf joins request lines the way HTTP/1.1 wants them, ending the header
// block.
func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// upstreamSaw decodes the reporting upstream's answer, failing unless the
// gateway let the request through.
func upstreamSaw(t *testing.T, resp *http.Response, body []byte) received {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway answered %d: %s", resp.StatusCode, body)
	}
	var got received
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("not the upstream's report: %s", body)
	}
	return got
}

// through sends raw to the gateway on localhost:9080 and returns what
// the upstream saw.
func through(t *testing.T, raw string) received {
	t.Helper()
	resp, body := rawHTTP(t, "localhost:9080", raw)
	return upstreamSaw(t, resp, body)
}

// checkIdentity fails unless the upstream got exactly the gateway's
// identity (openid and app id; none when openid is ""), nothing forged,
// no Authorization, and no identity-named trailer.
func checkIdentity(t *testing.T, a *testApp, got received, openid string) {
	t.Helper()
	for name, values := range got.Headers {
		for _, v := range values {
			if strings.Contains(v, "forged") {
				t.Errorf("forged header %s: %s reached the upstream", name, v)
			}
		}
	}
	for name, values := range got.Trailers {
		if foldedEqual(name, "authorization") || a.isIdentityName(name) {
			t.Errorf("trailer %s: %q reached the upstream", name, values)
		}
		for _, v := range values {
			if strings.Contains(v, "forged") {
				t.Errorf("forged trailer %s: %s reached the upstream", name, v)
			}
		}
	}
	if auth, ok := got.Headers["Authorization"]; ok {
		t.Errorf("Authorization reached the upstream: %q", auth)
	}
	wantOpenID, wantAppID := []string(nil), []string(nil)
	if openid != "" {
		wantOpenID, wantAppID = []string{openid}, []string{a.appID}
	}
	if g := got.Headers.Values("X-Wechat-Openid"); fmt.Sprint(g) != fmt.Sprint(wantOpenID) {
		t.Errorf("upstream X-WeChat-OpenID = %q, want %q", g, wantOpenID)
	}
	if g := got.Headers.Values("X-Wechat-Appid"); fmt.Sprint(g) != fmt.Sprint(wantAppID) {
		t.Errorf("upstream X-WeChat-AppID = %q, want %q", g, wantAppID)
	}
}

// isIdentityName reports whether name folds to one of the default
// identity header names.
func (a *testApp) isIdentityName(name string) bool {
	for _, id := range []string{DefaultHeaderOpenID, DefaultHeaderUnionID, DefaultHeaderPhone, DefaultHeaderCountryCode, DefaultHeaderAppID} {
		if foldedEqual(name, foldHeaderName(id)) {
			return true
		}
	}
	return false
}

// Issue 15, item 1: a client names the identity headers as hop-by-hop in
// Connection, and reverse_proxy would delete them after the gateway set
// them: the upstream would get an authorized request with no identity.
func TestConnectionTokensCannotStripIdentity(t *testing.T) {
	for _, extra := range []string{"", "require_phone", "mode optional"} {
		t.Run(cmpOr(extra, "required"), func(t *testing.T) {
			a := startReporting(t, extra)
			a.fake.SetPhone("nora", "13800002222", "86")
			tok := a.login("nora")
			if extra == "require_phone" {
				if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "nora"}); r.status != 200 {
					t.Fatalf("binding the phone: %d %s", r.status, r.raw)
				}
			}
			openid := a.fake.OpenID("nora")
			for _, connection := range [][]string{
				{"Connection: X-WeChat-OpenID, X-WeChat-AppID"},
				{"Connection: keep-alive, x_wechat_openid,X_WECHAT_APPID , x-wechat-phone"},
				{"Connection: X-WeChat-OpenID", "Connection: X-WeChat-AppID, Authorization"},
				{"Connection: x-wechat-country_code, X-WeChat-UnionID, X-WeChat-OpenID, X-WeChat-AppID"},
			} {
				lines := append([]string{
					"GET /api/profile HTTP/1.1",
					"Host: localhost:9080",
					"Authorization: Bearer " + tok,
				}, connection...)
				got := through(t, crlf(lines...))
				checkIdentity(t, a, got, openid)
				if extra == "require_phone" && got.Headers.Get("X-Wechat-Phone") != "13800002222" {
					t.Errorf("%q: upstream X-WeChat-Phone = %q", connection, got.Headers.Get("X-Wechat-Phone"))
				}
			}
			// Other Connection tokens keep working: "close" still closes.
			resp, _ := rawHTTP(t, "localhost:9080", crlf("GET /api/profile HTTP/1.1", "Host: localhost:9080",
				"Authorization: Bearer "+tok, "Connection: X-WeChat-OpenID, close"))
			if !resp.Close {
				t.Errorf("Connection: close was dropped with the identity token")
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Issue 15, item 2: trailers named like identity headers (or
// Authorization) never reach the upstream, declared or not, over chunked
// HTTP/1.1, for users and anonymous requests alike.
func TestIdentityTrailersHTTP1(t *testing.T) {
	for _, mode := range []string{"required", "optional"} {
		t.Run(mode, func(t *testing.T) {
			a := startReporting(t, "mode "+mode)
			tok := a.login("olga")
			openid := a.fake.OpenID("olga")
			send := func(token string, declared []string, trailers ...string) received {
				t.Helper()
				lines := []string{
					"POST /api/upload HTTP/1.1",
					"Host: localhost:9080",
					"Content-Type: text/plain",
					"Transfer-Encoding: chunked",
				}
				if token != "" {
					lines = append(lines, "Authorization: Bearer "+token)
				}
				for _, d := range declared {
					lines = append(lines, "Trailer: "+d)
				}
				raw := strings.Join(lines, "\r\n") + "\r\n\r\n" +
					"5\r\nhello\r\n0\r\n" + strings.Join(trailers, "\r\n") + "\r\n\r\n"
				got := through(t, raw)
				if got.Body != "hello" {
					t.Fatalf("upstream body = %q", got.Body)
				}
				return got
			}
			forged := []string{
				"X-WeChat-OpenID: forged-openid",
				"x_wechat_appid: forged-appid",
				"X-Wechat-Phone: forged-phone",
				"Authorization: Bearer forged",
				"X-Other: kept",
			}
			for name, declared := range map[string][]string{
				"declared":   {"X-WeChat-OpenID, x_wechat_appid, X-Wechat-Phone, Authorization, X-Other"},
				"undeclared": nil,
				"some":       {"X-Other"},
			} {
				t.Run(name, func(t *testing.T) {
					got := send(tok, declared, forged...)
					checkIdentity(t, a, got, openid)
					if mode == "optional" {
						checkIdentity(t, a, send("", declared, forged...), "")
					}
				})
			}
			// reverse_proxy does forward trailers (which is why the
			// identity-named ones must go), and the harmless ones still do.
			if got := send(tok, []string{"X-Other"}, "X-Other: kept"); got.Trailers.Get("X-Other") != "kept" {
				t.Errorf("a harmless trailer did not arrive: %v", got.Trailers)
			}
		})
	}
}

// Issue 15, item 2, over HTTP/2 (TLS on the test HTTPS port): trailers
// sent by an h2 client, with and without a token.
func TestIdentityTrailersHTTP2(t *testing.T) {
	a := newApp(t)
	a.upstream = reportingUpstream(t).URL
	const base = "https://localhost:9443"
	site := strings.Replace(a.site("mode optional"), gatewayBase+" {", base+" {\n\ttls internal", 1)
	a.load(globalOptions() + site)
	a.base = base
	a.client = &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	waitForCertificate(t, a.client, base)
	tok := a.login("pia")
	openid := a.fake.OpenID("pia")

	forged := http.Header{
		"X-Wechat-Openid":  {"forged-openid"},
		"X_wechat_appid":   {"forged-appid"},
		"X-Wechat-Unionid": {"forged-unionid"},
	}
	for _, token := range []string{tok, ""} {
		for _, declared := range []bool{true, false} {
			req, err := http.NewRequest("POST", base+"/api/upload", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/plain")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			// The h2 client declares the trailers present when it sends
			// the headers, and sends what req.Trailer holds after the
			// body: identity trailers added at the body's end go out
			// undeclared. (An Authorization trailer is refused by Go's
			// HTTP/2 server itself, PROTOCOL_ERROR, before any handler.)
			req.Trailer = http.Header{"X-Other": {"kept"}}
			if declared {
				maps.Copy(req.Trailer, forged)
			}
			req.Body = io.NopCloser(&atEOF{r: strings.NewReader("hello"), f: func() { maps.Copy(req.Trailer, forged) }})
			resp, err := a.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("not HTTP/2: %s", resp.Proto)
			}
			want := ""
			if token != "" {
				want = openid
			}
			got := upstreamSaw(t, resp, body)
			if got.Body != "hello" {
				t.Fatalf("upstream body = %q", got.Body)
			}
			checkIdentity(t, a, got, want)
			if got.Trailers.Get("X-Other") != "kept" {
				t.Errorf("a harmless trailer did not arrive: %v", got.Trailers)
			}
		}
	}
}

// atEOF is a reader that calls f once when r is exhausted.
type atEOF struct {
	r    io.Reader
	f    func()
	done bool
}

func (a *atEOF) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err == io.EOF && !a.done {
		a.done = true
		a.f()
	}
	return n, err
}

// Issue 15, item 3: more than one Authorization value, or an empty one,
// is 401 in both modes (never anonymous), and Authorization never reaches
// the upstream.
func TestAuthorizationAmbiguity(t *testing.T) {
	for _, mode := range []string{"optional", "required"} {
		t.Run(mode, func(t *testing.T) {
			a := startReporting(t, "mode "+mode)
			tok := a.login("quentin")
			get := func(auth ...string) (*http.Response, []byte) {
				lines := []string{"GET /api/profile HTTP/1.1", "Host: localhost:9080"}
				for _, v := range auth {
					lines = append(lines, "Authorization:"+v)
				}
				return rawHTTP(t, "localhost:9080", crlf(lines...))
			}
			for name, auth := range map[string][]string{
				"empty then valid": {"", " Bearer " + tok},
				"valid then empty": {" Bearer " + tok, ""},
				"valid twice":      {" Bearer " + tok, " Bearer " + tok},
				"empty":            {""},
				"blank":            {"   "},
				"scheme only":      {" Bearer"},
			} {
				resp, body := get(auth...)
				if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"unauthenticated"`)) {
					t.Errorf("%s: %d %s, want 401 unauthenticated", name, resp.StatusCode, body)
				}
				if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
					t.Errorf("%s: WWW-Authenticate = %q", name, resp.Header.Get("WWW-Authenticate"))
				}
			}
			// One valid token: through, without Authorization.
			resp, body := get(" Bearer " + tok)
			checkIdentity(t, a, upstreamSaw(t, resp, body), a.fake.OpenID("quentin"))
			// None at all: anonymous in optional mode, still without one.
			if mode == "optional" {
				resp, body := get()
				checkIdentity(t, a, upstreamSaw(t, resp, body), "")
			}
		})
	}
}
