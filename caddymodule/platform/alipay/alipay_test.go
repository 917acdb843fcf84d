package alipay

import (
	"fmt"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

// TestClassify: Alipay's refusals and sentinels by kind; a sign that does
// not verify is the client's in a phone payload, the gateway's answer's
// otherwise.
func TestClassify(t *testing.T) {
	p := &Platform{}
	api := func(api, code, sub string) error {
		return &alipay.APIError{API: api, Code: code, SubCode: sub}
	}
	for _, c := range []struct {
		err  error
		kind platform.Kind
		code string
	}{
		{api(alipay.APICode2Session, "40002", "isv.code-invalid"), platform.InvalidCode, "40002.isv.code-invalid"},
		{api(alipay.APICode2Session, "20000", "isp.unknow-error"), platform.Unavailable, "20000.isp.unknow-error"},
		{api(alipay.APICode2Session, "40001", ""), platform.Unknown, "40001"},
		{api(alipay.APIPhoneNumber, "40003", "isv.invalid-auth-relations"), platform.InvalidInput, "40003.isv.invalid-auth-relations"},
		{fmt.Errorf("x: %w: %w", alipay.ErrBadResponse, alipay.ErrSignature), platform.BadResponse, ""},
		{fmt.Errorf("x: %w: %w", alipay.ErrDecrypt, alipay.ErrSignature), platform.Decrypt, ""},
		{fmt.Errorf("x: %w", alipay.ErrTimeout), platform.Timeout, ""},
		{fmt.Errorf("x: %w", alipay.ErrUnavailable), platform.Unavailable, ""},
		{fmt.Errorf("x: %w", alipay.ErrInvalidInput), platform.InvalidInput, ""},
		{errNoAESKey, platform.InvalidInput, ""},
	} {
		if f := p.Classify(c.err); f.Kind != c.kind || p.ErrorCode(c.err) != c.code {
			t.Errorf("%v: %v %q, want %v %q", c.err, f.Kind, p.ErrorCode(c.err), c.kind, c.code)
		}
	}
	if _, err := p.OpenSignedPhone("x", "y"); err != errNoAESKey {
		t.Errorf("without aes_key: %v", err)
	}
	if _, ok := any(p).(platform.Sealer); ok {
		t.Errorf("Alipay has no session-key sealed data")
	}
}
