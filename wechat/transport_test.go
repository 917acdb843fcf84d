package wechat_test

import (
	"context"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// TestClientKeepsConnections: logins in flight at once (a storm) leave
// their connections to WeChat idle for the next logins instead of dialing
// each anew, as Go's default transport (2 idle per host) would: against
// the real API every dial is a TLS handshake.
func TestClientKeepsConnections(t *testing.T) {
	const wave = 16
	srv, dials := platformtest.WaveServer(t, wave, `{"session_key":"AAECAwQFBgcICQoLDA0ODw==","openid":"oABC"}`)
	c := wechat.NewClient("wx0123456789abcdef", "secret", wechat.WithBaseURL(srv.URL))
	first, again := platformtest.Waves(dials, wave, func() {
		if _, err := c.Code2Session(context.Background(), "code"); err != nil {
			t.Error(err)
		}
	})
	if again != 0 {
		t.Errorf("the second wave of %d logins dialed %d new connections (the first dialed %d), want 0", wave, again, first)
	}
}
