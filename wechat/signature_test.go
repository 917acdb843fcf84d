package wechat_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

// The vector is from sha1sum; see testdata/kat/README.md.
func TestVerifySignature(t *testing.T) {
	const raw, key = `{"nickName":"Band","gender":1}`, "HyVFkGl5F5OQWJZZaNzBBg=="
	const sig = "880cdb5994cb662931a46726252ab9d8942768db"
	for _, tt := range []struct {
		raw, key, sig string
		want          bool
	}{
		{raw, key, sig, true},
		{raw, key, "880CDB5994CB662931A46726252AB9D8942768DB", true},
		{raw, key, sig[:39], false},
		{raw, key, sig + "0", false},
		{raw, key, "", false},
		{raw + " ", key, sig, false},
		{raw, "AAAAAAAAAAAAAAAAAAAAAA==", sig, false},
	} {
		if got := wechat.VerifySignature(tt.raw, tt.key, tt.sig); got != tt.want {
			t.Errorf("VerifySignature(%q, %q, %q) = %v", tt.raw, tt.key, tt.sig, got)
		}
	}
}

// The key is the session_key's base64 text as code2Session gives it, not
// the 16 bytes it decodes to. What decided it: WeChat's own worked example
// on its "用户登录态签名" (user login state signature) page,
// hmac_sha256('{"foo":"bar"}', 'o0q0otL8aEzpcZL/FT9WsQ==') =
// 654571f7..., which only the text key reproduces (the decoded key gives
// bfa68836...). The vector over "" (what checksession signs) was computed
// with `printf ” | openssl dgst -sha256 -hmac 'o0q0otL8aEzpcZL/FT9WsQ=='`.
func TestUserStateSignature(t *testing.T) {
	const key = "o0q0otL8aEzpcZL/FT9WsQ=="
	for _, tt := range []struct{ data, want string }{
		{`{"foo":"bar"}`, "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"},
		{"", "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"},
	} {
		if got := wechat.UserStateSignature(key, tt.data); got != tt.want {
			t.Errorf("UserStateSignature(%q) = %s, want %s", tt.data, got, tt.want)
		}
	}
	if got := wechat.UserStateSignature(key, `{"foo":"bar"}`); got == "bfa6883695fed51bb7e5897ce895842574a58f8a9cc5c4343f47c515ab337b89" {
		t.Errorf("signed with the decoded key")
	}
}

// TestUserStateSignatureOpenSSL cross-checks more inputs against openssl,
// an implementation that shares nothing with this package.
func TestUserStateSignatureOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	for _, in := range [][2]string{
		{"HyVFkGl5F5OQWJZZaNzBBg==", ""},
		{"HyVFkGl5F5OQWJZZaNzBBg==", `{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","productId":"p","goodsPrice":10,"outTradeNo":"o1","attach":"签"}`},
		{"AAAAAAAAAAAAAAAAAAAAAA==", "line\nbreak "},
	} {
		cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", in[0])
		cmd.Stdin = strings.NewReader(in[1])
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		// "SHA2-256(stdin)= <hex>" or "(stdin)= <hex>", by version.
		f := strings.Fields(string(out))
		want := f[len(f)-1]
		if got := wechat.UserStateSignature(in[0], in[1]); got != want {
			t.Errorf("UserStateSignature(%q, %q) = %s, openssl says %s", in[0], in[1], got, want)
		}
	}
}
