package apicall

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var kinds = Kinds{Timeout: errors.New("x: timeout"), Unavailable: errors.New("x: unavailable"),
	BadResponse: errors.New("x: unusable response"), InvalidInput: errors.New("x: invalid input")}

func TestCheckCode(t *testing.T) {
	for code, bad := range map[string]bool{"abc-DEF_123:4": false, "": true, "a b": true, "a\u00a0b": true,
		"a\u200bb": true, "\xff": true, strings.Repeat("a", MaxCode): false, strings.Repeat("a", MaxCode+1): true} {
		if (CheckCode(code) != "") != bad {
			t.Errorf("CheckCode(%q) = %q", code, CheckCode(code))
		}
	}
}

func TestClipAndClean(t *testing.T) {
	if got := Clip("日本語", 4); got != "日..." {
		t.Errorf("Clip = %q", got)
	}
	c := New(Config{Prefix: "x", Kinds: kinds, BaseURL: "http://h", Timeout: time.Second, Secret: "sec ret!"})
	if got := c.CleanMsg("bad sec\nret! \x1b[31m"); strings.Contains(got, "sec ret!") || strings.ContainsAny(got, "\n\x1b") {
		t.Errorf("CleanMsg = %q", got)
	}
	if e := NewError("x", "login", kinds.InvalidInput, "empty code"); e.Error() != "x: login: invalid input: empty code" || !errors.Is(e, kinds.InvalidInput) {
		t.Errorf("NewError = %v", e)
	}
}

// A redirect is never followed: it would re-send the secret.
func TestNoRedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.invalid/", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := New(Config{Prefix: "x", Kinds: kinds, BaseURL: srv.URL, Timeout: time.Second})
	err := c.Do(context.Background(), Request{API: "login", Method: http.MethodPost, Path: "/", Form: map[string][]string{"a": {"b"}},
		Status: func([]byte) error { return nil }}, new(any))
	if !errors.Is(err, kinds.BadResponse) || !strings.Contains(err.Error(), "307") {
		t.Errorf("redirect: %v", err)
	}
}
