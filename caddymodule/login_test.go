package caddymodule

import (
	"context"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/memorystore"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/storetest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

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
