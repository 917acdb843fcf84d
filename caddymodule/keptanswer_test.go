package caddymodule

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestRetriedCodeOneCall(t *testing.T) {
	a := startGateway(t, "")
	first := a.postJSON("/wechat/login", "", map[string]string{"code": "judy"})
	again := a.postJSON("/wechat/login", "", map[string]string{"code": "judy"})
	if first.status != 200 || again.status != 200 || first.body["token"] != again.body["token"] {
		t.Fatalf("retry got another session: %s / %s", first.raw, again.raw)
	}
	if n := a.fake.Calls(wechattest.APICode2Session); n != 1 {
		t.Fatalf("code2Session calls = %d, want 1", n)
	}

	// Concurrent identical posts make one call.
	a.fake.SetDelay(wechattest.APICode2Session, 150*time.Millisecond)
	defer a.fake.SetDelay(wechattest.APICode2Session, 0)
	var wg sync.WaitGroup
	tokens := make([]any, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.postJSON("/wechat/login", "", map[string]string{"code": "judy:2"})
			tokens[i] = r.body["token"]
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok == nil || tok != tokens[0] {
			t.Fatalf("concurrent retries got different answers: %v", tokens)
		}
	}
	if n := a.fake.Calls(wechattest.APICode2Session); n != 2 {
		t.Fatalf("code2Session calls = %d, want 2", n)
	}
	// After a logout the code does not bring the session back.
	a.do(http.MethodPost, "/wechat/logout", tokens[0].(string), "", nil)
	r := a.postJSON("/wechat/login", "", map[string]string{"code": "judy:2"})
	expectError(t, r, 401, "invalid_code")
}
