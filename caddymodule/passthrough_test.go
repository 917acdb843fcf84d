package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestUnauthenticated(t *testing.T) {
	a := startGateway(t, "")
	r := a.do(http.MethodGet, "/api/x", "", "", nil)
	expectError(t, r, 401, "unauthenticated")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	good := a.login("alice")
	for name, auth := range map[string]string{
		"unknown token":      "Bearer " + strings.Repeat("A", tokenLength),
		"short token":        "Bearer abc",
		"long token":         "Bearer " + good + "A",
		"bad alphabet":       "Bearer " + good[:tokenLength-1] + "!",
		"basic scheme":       "Basic " + good,
		"no token":           "Bearer ",
		"token of other app": "Bearer " + strings.Repeat("B", tokenLength),
	} {
		r := a.do(http.MethodGet, "/api/x", "", "", nil, "Authorization", auth)
		expectError(t, r, 401, "unauthenticated")
		if name != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: WWW-Authenticate = %q", name, r.header.Get("WWW-Authenticate"))
		}
	}
	// Case of the scheme does not matter.
	if st, _ := a.upstreamHeaders("", "Authorization", "bearer "+good); st != 200 {
		t.Fatalf("lower-case bearer: %d", st)
	}
}

func TestOptionalMode(t *testing.T) {
	a := startGateway(t, "mode optional")
	st, h := a.upstreamHeaders("")
	if st != 200 || h.Get("X-Wechat-Openid") != "" {
		t.Fatalf("anonymous: %d %v", st, h)
	}
	// A token that is present but invalid is still a 401.
	expectError(t, a.do(http.MethodGet, "/api/x", strings.Repeat("x", tokenLength), "", nil), 401, "unauthenticated")
	tok := a.login("carol")
	if st, h := a.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") != a.fake.OpenID("carol") {
		t.Fatalf("authenticated: %d %v", st, h)
	}
}

// TestPassThroughAllocatesOnlyTheIdentity pins the hot path: a valid
// token is checked and the identity forwarded with two allocations, the
// backing array of the identity header values and the placeholders'
// provider.
func TestPassThroughAllocatesOnlyTheIdentity(t *testing.T) {
	h, _ := benchHandler(t, 1000)
	tokens := fillSessions(t, h.store, 1000, 16)
	// One request (and replacer) per run, as Caddy's server makes them:
	// a provider is appended to the replacer of each.
	const runs = 200
	reqs := make([]*http.Request, runs+1)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
		caddyhttp.NewTestReplacer(reqs[i])
		// A header map with room, as net/http's server makes it: the
		// map's own growth is not the handler's.
		for _, k := range []string{DefaultHeaderOpenID, DefaultHeaderAppID} {
			reqs[i].Header[k] = nil
			delete(reqs[i].Header, k)
		}
	}
	w := &discardWriter{h: make(http.Header)}
	auth := []string{"Bearer " + tokens[3]}
	next := 0
	serve := func() {
		r := reqs[next]
		next++
		r.Header["Authorization"] = auth
		if err := h.ServeHTTP(w, r, nopNext); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(runs, serve); n != 2 {
		t.Fatalf("a pass-through allocates %v times, want 2 (the header values, the placeholders)", n)
	}
	for i, r := range reqs {
		if r.Header.Get(DefaultHeaderOpenID) == "" {
			t.Fatalf("request %d not authenticated", i)
		}
	}
}
