package platformtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// WaveServer answers body to every request, each once wave requests are
// in at once (so that a wave of calls holds that many connections open
// together), and counts the connections it was dialed: a test of
// connection reuse under a storm.
func WaveServer(t testing.TB, wave int, body string) (*httptest.Server, *atomic.Int64) {
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
		io.WriteString(w, body)
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

// Waves runs call wave times at once, twice, and reports how many
// connections srv was dialed by the first wave and by the second.
func Waves(dials *atomic.Int64, wave int, call func()) (first, second int64) {
	run := func() {
		var wg sync.WaitGroup
		for range wave {
			wg.Add(1)
			go func() { defer wg.Done(); call() }()
		}
		wg.Wait()
	}
	run()
	first = dials.Load()
	run()
	return first, dials.Load() - first
}
