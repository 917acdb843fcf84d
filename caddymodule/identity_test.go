package caddymodule

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http2"
)

func TestIdentityHeaderStripping(t *testing.T) {
	for _, mode := range []string{"required", "optional"} {
		t.Run(mode, func(t *testing.T) {
			a := startGateway(t, "mode "+mode)
			tok := a.login("bob")
			forged := [][2]string{
				{"X-WeChat-OpenID", "forged"},
				{"x-wechat-openid", "forged"},
				{"X_WeChat_OpenID", "forged"},
				{"x_wechat_openid", "forged"},
				{"X-WECHAT-UNIONID", "forged"},
				{"x_wechat-phone", "forged"},
				{"X-WeChat-Country_Code", "forged"},
				{"x-wechat-appid", "forged"},
			}
			var headers []string
			for _, f := range forged {
				headers = append(headers, f[0], f[1])
			}
			// Repeated headers: every copy must go.
			headers = append(headers, "X-WeChat-OpenID", "forged2", "X-WeChat-OpenID", "forged3")

			check := func(h http.Header, wantOpenID string) {
				t.Helper()
				for k, vs := range h {
					for _, v := range vs {
						if strings.HasPrefix(v, "forged") {
							t.Errorf("forged header %s: %s reached the upstream", k, v)
						}
					}
				}
				if got := h.Values("X-Wechat-Openid"); wantOpenID == "" && len(got) != 0 || wantOpenID != "" && (len(got) != 1 || got[0] != wantOpenID) {
					t.Errorf("upstream openid = %q, want %q", got, wantOpenID)
				}
			}
			// Authenticated.
			st, h := a.upstreamHeaders(tok, headers...)
			if st != 200 {
				t.Fatalf("authenticated: %d", st)
			}
			check(h, a.fake.OpenID("bob"))

			// Anonymous: stripped too (optional), or refused (required).
			st, h = a.upstreamHeaders("", headers...)
			if mode == "optional" {
				if st != 200 {
					t.Fatalf("anonymous: %d", st)
				}
				check(h, "")
			} else if st != 401 {
				t.Fatalf("anonymous in required mode: %d", st)
			}
		})
	}
}

// A client names the identity headers as hop-by-hop in
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

// Trailers named like identity headers (or
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

// Trailers named like identity headers never reach the upstream over
// HTTP/2 either (TLS on the test HTTPS port): trailers sent by an h2
// client, with and without a token.
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

// A folded set finds a name however it is cased and whichever of "-" and
// "_" it uses, long names included, and nothing else.
func TestFoldedSet(t *testing.T) {
	long := "x-" + strings.Repeat("a", maxFoldedLen)
	fs := newFoldedSet([]string{"x-wechat-openid", "x-wechat-appid", long})
	for name, want := range map[string]bool{
		"X-WeChat-OpenID":                        true,
		"x_wechat_openid":                        true,
		"X_WECHAT-APPID":                         true,
		"X-WeChat-OpenIDs":                       false,
		"X-WeChat-OpenIE":                        false,
		"":                                       false,
		"X_" + strings.Repeat("A", maxFoldedLen): true,
		"X_" + strings.Repeat("B", maxFoldedLen): false,
		strings.Repeat("a", maxFoldedLen):        false,
	} {
		if got := fs.has(name); got != want {
			t.Errorf("has(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { fs.has("X_WeChat_OpenID") }); n != 0 {
		t.Errorf("has allocates %v times, want 0", n)
	}
}

// BenchmarkStrip strips a request of the headers a mini program sends
// (one of them an identity header in disguise) with 5 names to strip and
// with 35 (every platform's defaults): the cost follows the request's
// headers, not the names.
func BenchmarkStrip(b *testing.B) {
	for _, extra := range []int{0, 30} {
		b.Run(fmt.Sprintf("names=%d", 5+extra), func(b *testing.B) {
			h := &Handler{HeaderOpenID: DefaultHeaderOpenID, HeaderUnionID: DefaultHeaderUnionID,
				HeaderPhone: DefaultHeaderPhone, HeaderCountryCode: DefaultHeaderCountryCode, HeaderAppID: DefaultHeaderAppID}
			ih := newIdentityHeaders(h)
			for i := range extra {
				ih.folded = append(ih.folded, fmt.Sprintf("x-platform%02d-user-id", i))
			}
			ih.stripped = newFoldedSet(ih.folded)
			r := httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
			for _, k := range []string{"User-Agent", "Referer", "Content-Type", "Accept-Encoding", "Accept", "Authorization", "X-Request-Id"} {
				r.Header[k] = []string{"v"}
			}
			forged := []string{"forged"}
			b.ReportAllocs()
			for b.Loop() {
				r.Header["X_wechat_openid"] = forged
				ih.strip(r)
			}
		})
	}
}

// TestStripEverySpelling drives strip's fast path (the length, first and
// last byte filter and the Connection check in the loop) with every
// identity name, each platform's defaults and configured ones, a short
// one and one too long for the filter, in spellings that fold alike: in
// headers, in trailers and as Connection tokens, every one must go. A
// decoy of the same length and first byte, whose last byte differs,
// must stay.
func TestStripEverySpelling(t *testing.T) {
	h := &Handler{HeaderOpenID: "Remote-User", HeaderUnionID: DefaultHeaderUnionID,
		HeaderPhone: "P", HeaderCountryCode: DefaultHeaderCountryCode,
		HeaderAppID: strings.Repeat("X-Long-", 10) + "AppID"}
	ih := newIdentityHeaders(h)
	names := identityHeaderNames(h)
	if len(names) < 10 {
		t.Fatalf("only %d identity names: the platform defaults are missing", len(names))
	}
	spellings := func(name string) []string {
		alternating := []byte(name)
		for i := range alternating {
			if i%2 == 0 {
				alternating[i] = strings.ToUpper(name[i : i+1])[0]
			} else {
				alternating[i] = strings.ToLower(name[i : i+1])[0]
			}
		}
		return []string{name, strings.ToUpper(name), strings.ToLower(name),
			strings.ReplaceAll(name, "-", "_"), strings.ToUpper(strings.ReplaceAll(name, "-", "_")),
			string(alternating)}
	}
	for _, name := range names {
		for _, s := range spellings(name) {
			decoy := s[:len(s)-1] + "9"
			if foldedEqual(decoy, foldHeaderName(name)) {
				t.Fatalf("decoy %q folds to %q", decoy, name)
			}
			r := httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
			r.Header[s] = []string{"forged"}
			r.Header[decoy] = []string{"kept"}
			r.Header["Connection"] = []string{"keep-alive, " + s, decoy}
			r.Trailer = http.Header{s: {"forged"}, decoy: {"kept"}}
			ih.strip(r)
			if _, ok := r.Header[s]; ok {
				t.Errorf("header %q (%s) not stripped", s, name)
			}
			if _, ok := r.Trailer[s]; ok {
				t.Errorf("trailer %q (%s) not stripped", s, name)
			}
			if got := r.Header["Connection"]; len(got) != 2 || got[0] != "keep-alive" || got[1] != decoy {
				t.Errorf("Connection naming %q (%s) became %q", s, name, got)
			}
			if r.Header[decoy] == nil || r.Trailer[decoy] == nil {
				t.Errorf("decoy %q of %q stripped", decoy, s)
			}
		}
	}
}

// TestStripUndeclaredTrailer: a trailer nobody declared, sent at the end
// of a chunked body in lower case with underscores, is stripped once the
// body has been read.
func TestStripUndeclaredTrailer(t *testing.T) {
	ih := newIdentityHeaders(&Handler{HeaderOpenID: DefaultHeaderOpenID, HeaderUnionID: DefaultHeaderUnionID,
		HeaderPhone: DefaultHeaderPhone, HeaderCountryCode: DefaultHeaderCountryCode, HeaderAppID: DefaultHeaderAppID})
	r := httptest.NewRequest(http.MethodPost, "http://gw.example/api", strings.NewReader("body"))
	r.ContentLength = -1
	ih.strip(r)
	r.Trailer = http.Header{"x_wechat_openid": {"forged"}, "X-Other": {"kept"}} // as net/http fills it at EOF
	if _, err := io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Trailer["x_wechat_openid"]; ok || r.Trailer.Get("X-Other") != "kept" {
		t.Errorf("trailers after the body: %v", r.Trailer)
	}
}

// TestPlaceholdersNameWhoAuthenticatedLast pins the placeholders'
// precedence: {http.auth.user.*} names the user of the handler that
// authenticated last, over what an earlier handler (basic_auth) set, and
// a handler after ours that sets one still wins over ours.
func TestPlaceholdersNameWhoAuthenticatedLast(t *testing.T) {
	h, _ := benchHandler(t, 10)
	tokens := fillSessions(t, h.store, 10, 1)
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.id", "basic-auth-user")
	repl.Set("http.auth.user.email", "basic@example.com")
	r.Header.Set("Authorization", "Bearer "+tokens[0])
	var seen map[string]any
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = map[string]any{}
		for _, k := range []string{"id", "unionid", "phone", "appid", "email"} {
			if v, ok := repl.Get("http.auth.user." + k); ok {
				seen[k] = v
			}
		}
		repl.Set("http.auth.user.id", "set-after-us")
		return nil
	})
	if err := h.ServeHTTP(&discardWriter{h: make(http.Header)}, r, next); err != nil {
		t.Fatal(err)
	}
	openID := r.Header.Get(DefaultHeaderOpenID)
	if openID == "" {
		t.Fatal("not authenticated")
	}
	want := map[string]any{"id": openID, "unionid": "", "phone": "", "appid": h.appID}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("placeholders after wechat_auth = %v, want %v (an earlier handler's, email included, are gone)", seen, want)
	}
	if v, _ := repl.GetString("http.auth.user.id"); v != "set-after-us" {
		t.Fatalf("a later handler's Set: {http.auth.user.id} = %q, want set-after-us", v)
	}
	if v, ok := repl.Get("http.auth.userx"); ok {
		t.Fatalf("a name only starting like ours answered %v", v)
	}
}
