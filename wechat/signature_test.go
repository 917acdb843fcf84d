package wechat_test

import (
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
