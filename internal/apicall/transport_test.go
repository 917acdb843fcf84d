package apicall_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
)

// TestNewHTTPClientKeepsConnections: a storm's calls in flight at once
// leave their connections idle for the next, rather than dialing again
// (Go's default transport keeps 2 per host and closes the rest).
func TestNewHTTPClientKeepsConnections(t *testing.T) {
	const wave = 16
	srv, dials := platformtest.WaveServer(t, wave, `{"errcode":0}`)
	hc := apicall.NewHTTPClient()
	first, again := platformtest.Waves(dials, wave, func() {
		resp, err := hc.Get(srv.URL)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	if first != wave {
		t.Fatalf("the first wave of %d calls at once dialed %d connections", wave, first)
	}
	if again != 0 {
		t.Errorf("the second wave dialed %d new connections, want 0 (the first wave's were kept idle)", again)
	}
}

// TestNewHTTPClientFollowsNoRedirect: a redirect would re-send a POST
// body, app secret included, to wherever Location points.
func TestNewHTTPClientFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	resp, err := apicall.NewHTTPClient().Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Errorf("status %d, %d requests elsewhere: want the 307 itself and none", resp.StatusCode, hits.Load())
	}
}
