package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

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
