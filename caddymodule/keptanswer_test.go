package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
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

// TestKeptAnswerRoundTrip: a kept answer reads back only with the code
// and app it was kept for, and a damaged entry does not read at all.
func TestKeptAnswerRoundTrip(t *testing.T) {
	const app = "wx0123456789abcdef"
	for _, ka := range []keptAnswer{
		{Token: strings.Repeat("t", tokenLength), ExpiresAt: 1700000000},
		{Refused: 40163},
	} {
		enc, err := encryptKeptAnswer(app, "code", ka)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decryptKeptAnswer(app, "code", enc); err != nil || got != ka {
			t.Fatalf("read back %+v, %v; want %+v", got, err, ka)
		}
		if again, _ := encryptKeptAnswer(app, "code", ka); bytes.Equal(again, enc) {
			t.Fatal("two encryptions of one answer are equal: the nonce is not random")
		}
		if bytes.Contains(enc, []byte(ka.Token)) && ka.Token != "" {
			t.Fatal("the token is in the clear")
		}
		tampered := bytes.Clone(enc)
		tampered[len(tampered)-1] ^= 1
		for name, c := range map[string]struct {
			app, code string
			enc       []byte
		}{
			"other code": {app, "code2", enc},
			"other app":  {"wx0123456789abcdee", "code", enc},
			"tampered":   {app, "code", tampered},
			"truncated":  {app, "code", enc[:len(enc)-1]},
			"nonce only": {app, "code", enc[:12]},
			"too short":  {app, "code", enc[:5]},
			"empty":      {app, "code", nil},
		} {
			if got, err := decryptKeptAnswer(c.app, c.code, c.enc); err == nil {
				t.Errorf("%s: read back %+v", name, got)
			}
		}
	}
}

// TestKeptAnswerFormat pins what the stores hold: the key of a code's
// entry and the encryption of its answer. A change here would orphan
// every kept answer of a running deployment (a retried login would then
// cost a WeChat call and fail as a used code).
func TestKeptAnswerFormat(t *testing.T) {
	const app = "wx0123456789abcdef"
	h := &Handler{client: wechat.NewClient(app, "secret")}
	sum := sha256.Sum256([]byte("caddy-wechat-auth login-retry id\x00" + app + "\x00code-1"))
	if got := h.loginKey("code-1"); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("loginKey = %s, want %x", got, sum)
	}
	for _, c := range []struct {
		code, enc string
		want      keptAnswer
	}{
		{"code-1", "49e3ec892ad59a5625b625248e752393a5755a1d6f5637183fdc7ad451fd913b26e39baeb9621f422abeccfd71e24b877160757311b6", keptAnswer{Token: "tok", ExpiresAt: 1700000000}},
		{"code-2", "c0a761d80af1da7b7231f2113343818a1dc9ac5c49db982dcde9a0894f9467963a9b8959cd3b03", keptAnswer{Refused: 40163}},
	} {
		enc, _ := hex.DecodeString(c.enc)
		if got, err := decryptKeptAnswer(app, c.code, enc); err != nil || got != c.want {
			t.Errorf("%s: read %+v, %v; want %+v", c.code, got, err, c.want)
		}
	}
}
