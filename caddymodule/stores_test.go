package caddymodule

import (
	"testing"
)

// TestPersistKeepsSessionsAcrossRestart stops the memory store (a config
// without the app drops its last user, as stopping Caddy would) and starts
// it again from its persist file: the session lives on.
func TestPersistKeepsSessionsAcrossRestart(t *testing.T) {
	file := t.TempDir() + "/sessions.db"
	a := newApp(t)
	fake := a.fake
	withPersist := globalOptions() + a.site("store memory {\n\t\t\tpersist "+file+"\n\t\t}")
	a.load(withPersist)
	fake.SetPhone("uma", "13511112222", "86")
	tok := a.login("uma")
	if r := a.postJSON("/wechat/phone", tok, map[string]string{"code": "uma"}); r.status != 200 {
		t.Fatalf("phone: %d %s", r.status, r.raw)
	}

	// Another app only: the store of ours is destroyed and saved.
	other := newApp(t)
	a.load(globalOptions() + other.site(""))
	if st, _ := a.upstreamHeaders(tok); st != 401 {
		t.Fatalf("the token worked on another app: %d", st)
	}

	a.load(withPersist)
	st, h := a.upstreamHeaders(tok)
	if st != 200 || h.Get("X-Wechat-Openid") != fake.OpenID("uma") || h.Get("X-Wechat-Phone") != "13511112222" {
		t.Fatalf("after the restart: %d %v", st, h)
	}
}
