package caddymodule

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// More than one Authorization value, or an empty one,
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

// TestTokenShapes: tokens of the wrong length, alphabet or app are all 401
// and never reach the store as anything but a miss.
func TestTokenShapes(t *testing.T) {
	a := startGateway(t, "")
	good := a.login("rita")
	other := startGateway(t, "") // another app: the config now serves only it
	otherTok := other.login("rita")
	_ = good
	for name, tok := range map[string]string{
		"empty":          "",
		"one char":       "a",
		"42 chars":       strings.Repeat("a", 42),
		"44 chars":       strings.Repeat("a", 44),
		"padding":        strings.Repeat("a", 42) + "=",
		"std base64":     strings.Repeat("a", 41) + "+/",
		"unicode":        strings.Repeat("a", 40) + "é",
		"huge":           strings.Repeat("a", 8000),
		"of another app": good,
	} {
		r := other.do("GET", "/api/x", "", "", nil, "Authorization", "Bearer "+tok)
		if r.status != 401 || r.body["error"] != "unauthenticated" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if st, _ := other.upstreamHeaders(otherTok); st != 200 {
		t.Fatalf("the app's own token: %d", st)
	}
}
