package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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

// TestPassThroughAllocatesOnlyTheHeaderWrite pins the hot path: a valid
// token is checked and the identity forwarded with one allocation, the
// backing array of the identity header values.
func TestPassThroughAllocatesOnlyTheHeaderWrite(t *testing.T) {
	h, _ := benchHandler(t, 1000)
	tokens := fillSessions(t, h.store, 1000, 16)
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := &discardWriter{h: make(http.Header)}
	auth := []string{"Bearer " + tokens[3]}
	serve := func() {
		for k := range r.Header {
			delete(r.Header, k)
		}
		r.Header["Authorization"] = auth
		if err := h.ServeHTTP(w, r, nopNext); err != nil {
			t.Fatal(err)
		}
	}
	serve()
	if r.Header.Get(DefaultHeaderOpenID) == "" {
		t.Fatal("not authenticated")
	}
	if n := testing.AllocsPerRun(200, serve); n != 1 {
		t.Fatalf("a pass-through allocates %v times, want 1 (the header values)", n)
	}
}
