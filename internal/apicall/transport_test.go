package apicall

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// countingServer answers every request once wave requests are in at
// once (so that a wave holds that many connections open together) and
// counts the connections it was dialed.
func countingServer(t *testing.T, wave int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		ch := release
		if arrived%wave == 0 {
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-ch
		io.WriteString(w, `{"errcode":0}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &dials
}

// TestNewHTTPClientKeepsConnections: a storm's calls in flight at once
// leave their connections idle for the next, rather than dialing again
// (Go's default transport keeps 2 per host and closes the rest).
func TestNewHTTPClientKeepsConnections(t *testing.T) {
	const wave = 16
	srv, dials := countingServer(t, wave)
	hc := NewHTTPClient()
	callWave := func() {
		var wg sync.WaitGroup
		for range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	callWave()
	first := dials.Load()
	if first != wave {
		t.Fatalf("the first wave of %d calls at once dialed %d connections", wave, first)
	}
	callWave()
	if again := dials.Load() - first; again != 0 {
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
	resp, err := NewHTTPClient().Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Errorf("status %d, %d requests elsewhere: want the 307 itself and none", resp.StatusCode, hits.Load())
	}
}
