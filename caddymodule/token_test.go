package caddymodule

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// More than one Authorization value, or an empty one, is 401 in both
// modes (never anonymous), and Authorization never reaches the upstream.
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

// TestBearerToken parses the Authorization header alone, without Caddy:
// only one well-formed Bearer token is a token; any other header present
// is an invalid token, never "no token".
func TestBearerToken(t *testing.T) {
	tok := strings.Repeat("A", tokenLength-2) + "-_"
	for _, c := range []struct {
		name    string
		values  []string // nil: no Authorization header
		token   string
		present bool
	}{
		{"no header", nil, "", false},
		{"bearer", []string{"Bearer " + tok}, tok, true},
		{"lower-case scheme", []string{"bearer " + tok}, tok, true},
		{"upper-case scheme", []string{"BEARER " + tok}, tok, true},
		{"mixed-case scheme", []string{"bEaReR " + tok}, tok, true},
		{"Bearer without the space", []string{"BearerX" + tok}, "", true},
		{"empty", []string{""}, "", true},
		{"scheme only", []string{"Bearer"}, "", true},
		{"scheme and space", []string{"Bearer "}, "", true},
		{"two spaces", []string{"Bearer  " + tok}, "", true},
		{"tab", []string{"Bearer\t" + tok}, "", true},
		{"trailing space", []string{"Bearer " + tok + " "}, "", true},
		{"basic", []string{"Basic " + tok}, "", true},
		{"no scheme", []string{tok}, "", true},
		{"short", []string{"Bearer " + tok[1:]}, "", true},
		{"long", []string{"Bearer " + tok + "A"}, "", true},
		{"padding", []string{"Bearer " + tok[:tokenLength-1] + "="}, "", true},
		{"std base64", []string{"Bearer " + tok[:tokenLength-2] + "+/"}, "", true},
		{"non-ASCII", []string{"Bearer " + tok[:tokenLength-2] + "é"}, "", true},
		{"two values", []string{"Bearer " + tok, "Bearer " + tok}, "", true},
		{"empty then valid", []string{"", "Bearer " + tok}, "", true},
		{"no values", []string{}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.values != nil {
				r.Header["Authorization"] = c.values
			}
			token, present := bearerToken(r)
			if token != c.token || present != c.present {
				t.Fatalf("bearerToken = %q, %v; want %q, %v", token, present, c.token, c.present)
			}
		})
	}
}

// TestNewTokenShape: a new token is 43 characters of unpadded base64url
// (256 bits), passes wellFormedToken, and is never the same twice.
func TestNewTokenShape(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tokenLength || !wellFormedToken(tok) {
			t.Fatalf("token %q: wrong shape", tok)
		}
		if b, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(b) != tokenBytes {
			t.Fatalf("token %q: not %d bytes of base64url: %v", tok, tokenBytes, err)
		}
		if seen[tok] {
			t.Fatalf("token %q twice", tok)
		}
		seen[tok] = true
	}
}

// TestWellFormedToken: exactly 43 characters of the base64url alphabet.
func TestWellFormedToken(t *testing.T) {
	for _, c := range []struct {
		tok  string
		want bool
	}{
		{strings.Repeat("a", tokenLength), true},
		{"AZaz09-_" + strings.Repeat("x", tokenLength-8), true},
		{"", false},
		{strings.Repeat("a", tokenLength-1), false},
		{strings.Repeat("a", tokenLength+1), false},
		{strings.Repeat("a", tokenLength-1) + "=", false},
		{strings.Repeat("a", tokenLength-1) + "+", false},
		{strings.Repeat("a", tokenLength-1) + "/", false},
		{strings.Repeat("a", tokenLength-1) + ".", false},
		{strings.Repeat("a", tokenLength-1) + " ", false},
		{strings.Repeat("a", tokenLength-1) + "\x00", false},
		{strings.Repeat("a", tokenLength-2) + "é", false}, // 43 bytes, not ASCII
	} {
		if got := wellFormedToken(c.tok); got != c.want {
			t.Errorf("wellFormedToken(%q) = %v, want %v", c.tok, got, c.want)
		}
	}
}

// FuzzBearerToken: any Authorization header gives either a well-formed
// token or none, without a panic.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"", "Bearer ", "bearer " + strings.Repeat("A", tokenLength), "Basic abc", "Bearer " + strings.Repeat("é", 30)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", auth)
		tok, present := bearerToken(r)
		if tok != "" && !wellFormedToken(tok) {
			t.Fatalf("accepted a malformed token %q", tok)
		}
		if r.Header.Get("Authorization") != "" && !present {
			t.Fatalf("a sent header reported absent")
		}
	})
}

// TestWellFormedTokenEveryByte puts every byte value at every position of
// a token: the table must agree with the base64url alphabet everywhere,
// the tail the unrolled loop handles last included.
func TestWellFormedTokenEveryByte(t *testing.T) {
	valid := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	tok := []byte("AZaz09-_" + strings.Repeat("x", tokenLength-8))
	for pos := range tokenLength {
		orig := tok[pos]
		for c := range 256 {
			tok[pos] = byte(c)
			if got := wellFormedToken(string(tok)); got != valid(byte(c)) {
				t.Fatalf("wellFormedToken with %q at %d = %v", byte(c), pos, got)
			}
		}
		tok[pos] = orig
	}
}

func BenchmarkWellFormedToken(b *testing.B) {
	tok := "AZaz09-_" + strings.Repeat("x", tokenLength-8)
	for b.Loop() {
		if !wellFormedToken(tok) {
			b.Fatal("rejected")
		}
	}
}
