package wechat_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// TestClientKeepsConnections: logins in flight at once (a storm) leave
// their connections to WeChat idle for the next logins instead of dialing
// each anew, as Go's default transport (2 idle per host) would: against
// the real API every dial is a TLS handshake.
func TestClientKeepsConnections(t *testing.T) {
	const wave = 16
	var dials atomic.Int64
	var mu sync.Mutex
	arrived, release := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock() // every wave's calls are answered once all are in
		arrived++
		ch := release
		if arrived%wave == 0 {
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-ch
		io.WriteString(w, `{"session_key":"AAECAwQFBgcICQoLDA0ODw==","openid":"oABC"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := wechat.NewClient("wx0123456789abcdef", "secret", wechat.WithBaseURL(srv.URL))
	callWave := func() {
		var wg sync.WaitGroup
		for range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Code2Session(context.Background(), "code"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	callWave()
	first := dials.Load()
	callWave()
	if again := dials.Load() - first; again != 0 {
		t.Errorf("the second wave of %d logins dialed %d new connections (the first dialed %d), want 0", wave, again, first)
	}
}
