package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Raw-HTTP helpers, for the header and trailer tricks a client can play:
// raw TCP where Go's own client would rewrite what an attacker sends.
// Every request goes through reverse_proxy to an upstream that reports
// what it received, headers and trailers alike.

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
