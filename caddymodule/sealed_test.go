package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/gatewaytest"
)

// TestSessionKeyGrace is WeChat's getPhoneNumber pitfall, solved on the
// server: the mini program holds data sealed with alice's key, then logs
// in again (the key rotates). With either of her tokens the data still
// opens, for session_key_grace; after it, and for data two rotations old,
// it is 400 decrypt_failed. Nothing in the answer tells which key opened
// it; the log line and the metrics do.
func TestSessionKeyGrace(t *testing.T) {
	phone := func(a *testApp, tok, enc, iv string) response {
		return a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc, "iv": iv})
	}

	t.Run("previous key opens within the grace", func(t *testing.T) {
		a := startGateway(t, "session_key_grace 3s")
		a.fake.SetPhone("alice", "13800001111", "86")
		tok1 := a.login("alice")
		enc, iv, err := a.fake.SealPhone("alice") // sealed with her current key
		if err != nil {
			t.Fatal(err)
		}
		fresh := phone(a, tok1, enc, iv) // what an answer with the newest key looks like
		tok2 := a.login("alice:2")       // rotates the key
		for _, tok := range []string{tok1, tok2} {
			r := phone(a, tok, enc, iv)
			if r.status != 200 || r.body["purePhoneNumber"] != "13800001111" {
				t.Fatalf("data sealed before the re-login: %d %s", r.status, r.raw)
			}
			if r.raw != fresh.raw {
				t.Fatalf("the answer differs when the previous key opened it: %s vs %s", r.raw, fresh.raw)
			}
		}
		// /decrypt too.
		encU, ivU, err := a.fake.Seal("alice", map[string]any{"nickName": "A"})
		if err != nil {
			t.Fatal(err)
		}
		a.login("alice:3")
		if r := a.postJSON("/wechat/decrypt", tok1, map[string]string{"encryptedData": encU, "iv": ivU}); r.status != 200 || r.body["nickName"] != "A" {
			t.Fatalf("decrypt with the previous key: %d %s", r.status, r.raw)
		}
		_, metrics := adminDo(t, "GET", "/metrics")
		for _, want := range []string{
			`caddy_wechat_auth_decryptions_total{app_id="` + a.appID + `",endpoint="phone",platform="wechat",result="previous_key"} 2`,
			`caddy_wechat_auth_decryptions_total{app_id="` + a.appID + `",endpoint="decrypt",platform="wechat",result="previous_key"} 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// After the grace, the previous key is gone.
		decrypt := func() response {
			return a.postJSON("/wechat/decrypt", tok2, map[string]string{"encryptedData": encU, "iv": ivU})
		}
		gatewaytest.Eventually(t, 10*time.Second, "decrypt_failed after the grace", func() bool { return decrypt().status == 400 })
		expectError(t, decrypt(), 400, "decrypt_failed")
	})

	t.Run("two rotations old is refused", func(t *testing.T) {
		a := startGateway(t, "") // the default grace, 5m
		tok := a.login("bob")
		enc, iv, err := a.fake.SealPhone("bob")
		if err != nil {
			t.Fatal(err)
		}
		a.login("bob:2")
		a.login("bob:3")
		expectError(t, phone(a, tok, enc, iv), 400, "decrypt_failed")
		// The newest key always works, for every token.
		enc, iv, _ = a.fake.SealPhone("bob")
		if r := phone(a, tok, enc, iv); r.status != 200 {
			t.Fatalf("newest key: %d %s", r.status, r.raw)
		}
	})

	t.Run("off", func(t *testing.T) {
		a := startGateway(t, "session_key_grace off")
		tok := a.login("carol")
		enc, iv, _ := a.fake.SealPhone("carol")
		a.login("carol:2")
		expectError(t, phone(a, tok, enc, iv), 400, "decrypt_failed")
	})
}
