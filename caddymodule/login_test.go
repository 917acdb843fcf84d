package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/memorystore"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestLoginAndPassThrough(t *testing.T) {
	a := startGateway(t, "")
	a.fake.SetUnionID("alice", "union-alice")

	r := a.postJSON("/wechat/login", "", map[string]string{"code": "alice"})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	if r.body["openid"] != a.fake.OpenID("alice") || r.body["unionid"] != "union-alice" || r.body["has_phone"] != false {
		t.Fatalf("login answer: %s", r.raw)
	}
	if ei, _ := r.body["expires_in"].(float64); ei < 719*3600 || ei > 720*3600 {
		t.Fatalf("expires_in = %v, want about 720h", r.body["expires_in"])
	}
	if strings.Contains(r.raw, a.fake.SessionKey("alice")) || strings.Contains(r.raw, "session_key") {
		t.Fatalf("login answer leaks the session key: %s", r.raw)
	}
	tok := r.body["token"].(string)

	status, h := a.upstreamHeaders(tok)
	if status != 200 {
		t.Fatalf("pass-through: %d", status)
	}
	want := map[string]string{
		"X-Wechat-Openid":     a.fake.OpenID("alice"),
		"X-Wechat-Unionid":    "union-alice",
		"X-Wechat-Appid":      a.appID,
		"X-Placeholder-User":  a.fake.OpenID("alice"),
		"X-Placeholder-Appid": a.appID,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("upstream %s = %q, want %q", k, got, v)
		}
	}
	if h.Get("Authorization") != "" {
		t.Errorf("Authorization reached the upstream")
	}
	if h.Get("X-Wechat-Phone") != "" {
		t.Errorf("phone header without a bound phone")
	}

	s := a.do(http.MethodGet, "/wechat/session", tok, "", nil)
	if s.status != 200 || s.body["openid"] != a.fake.OpenID("alice") || s.body["has_phone"] != false {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}

	// Logout kills the token.
	lo := a.do(http.MethodPost, "/wechat/logout", tok, "", nil)
	if lo.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", lo.status, lo.raw)
	}
	expectError(t, a.do(http.MethodGet, "/api/x", tok, "", nil), 401, "unauthenticated")
	expectError(t, a.do(http.MethodGet, "/wechat/session", tok, "", nil), 401, "unauthenticated")
}

// A store failure during login is logged with the
// result the README documents, and the operation.
func TestLoginStoreFailureLogged(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	srv := redistest.Start(t)
	a := newApp(t)
	global := strings.Replace(globalOptions(), "skip_install_trust", "skip_install_trust\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel INFO\n\t}", 1)
	a.load(global + a.site(fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\ttimeout 500ms\n\t\t}", srv.Addr())))
	a.login("xena")
	srv.Stop()
	expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "xena:2"}), 503, "store_unavailable")

	var line map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		logs, _ := os.ReadFile(logFile)
		for l := range bytes.SplitSeq(logs, []byte("\n")) {
			if bytes.Contains(l, []byte(`"session store failed"`)) {
				_ = json.Unmarshal(l, &line)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if line == nil {
		t.Fatal("no \"session store failed\" line in the log")
	}
	if line["result"] != "store_unavailable" || line["operation"] == nil || line["error"] == nil {
		t.Fatalf("store failure log line: %v", line)
	}
}

// missFirst hides the kept login answers from its first GetLoginResult:
// the moment in which another gateway finishes a login of the same code
// while this one is still asking WeChat.
type missFirst struct {
	store.Store
	missed atomic.Bool
}

func (s *missFirst) GetLoginResult(ctx context.Context, key string) ([]byte, error) {
	if s.missed.CompareAndSwap(false, true) {
		return nil, store.ErrNotFound
	}
	return s.Store.GetLoginResult(ctx, key)
}

// A code refused as used because another gateway (sharing the store) has
// just logged it in gets that login's session, as a retry would; once
// that session is gone, the refusal is remembered and answered without a
// call.
func TestUsedCodeTakesTheKeptLogin(t *testing.T) {
	appID := newAppID()
	fake := wechattest.NewServer(appID, testSecret)
	t.Cleanup(fake.Close)
	shared, _ := storetest.OpenModule(t, new(memorystore.MemoryStore), appID, nil)
	gateway := func(s store.Store) *Handler {
		h := &Handler{
			store:  s,
			logger: zap.NewNop(),
			logins: new(singleflight.Group),
			client: wechat.NewClient(appID, testSecret, wechat.WithBaseURL(fake.URL)),
		}
		h.applyDefaults()
		return h
	}
	ctx := context.Background()
	a := gateway(shared)
	first, err := a.login(ctx, "amy", a.loginKey("amy"))
	if err != nil {
		t.Fatal(err)
	}

	b := gateway(&missFirst{Store: shared})
	again, err := b.login(ctx, "amy", b.loginKey("amy"))
	if err != nil || again.token != first.token || !again.retried {
		t.Fatalf("the used code on another gateway: %+v, %v; want the kept session", again, err)
	}
	if n := fake.Calls(wechattest.APICode2Session); n != 2 {
		t.Fatalf("code2Session calls = %d, want 2", n)
	}

	// Logged out: the code is refused, and the refusal is kept.
	if err := shared.DeleteSession(ctx, store.HashToken(first.token)); err != nil {
		t.Fatal(err)
	}
	c := gateway(&missFirst{Store: shared})
	if _, err := c.login(ctx, "amy", c.loginKey("amy")); !wechat.IsInvalidCode(err) {
		t.Fatalf("after the logout: %v, want WeChat's refusal", err)
	}
	_, err = a.login(ctx, "amy", a.loginKey("amy"))
	if _, remembered := err.(refusedCode); !remembered || !wechat.IsInvalidCode(err) {
		t.Fatalf("a repeat: %v, want the remembered refusal", err)
	}
	if n := fake.Calls(wechattest.APICode2Session); n != 3 {
		t.Fatalf("code2Session calls = %d, want 3", n)
	}
}
