package alipay_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

func TestDecryptPhone(t *testing.T) {
	srv, c := newPair(t)
	resp, sign, err := alipay.ParsePhonePayload([]byte(srv.PhonePayload("alice")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.DecryptPhone(resp, sign)
	if err != nil || p.PurePhoneNumber != srv.Phone("alice") || p.PhoneNumber != p.PurePhoneNumber {
		t.Fatalf("DecryptPhone = %v, %v", p, err)
	}
	if s := p.String(); strings.Contains(s, p.PurePhoneNumber[3:7]) {
		t.Errorf("String() = %q, want masked", s)
	}
	srv.SetPhone("bob", "15976719050")
	if p, err := c.DecryptPhone(srv.PhoneResponse("bob")); err != nil || p.PurePhoneNumber != "15976719050" {
		t.Errorf("bob: %v, %v", p, err)
	}
}

func TestDecryptPhoneFailures(t *testing.T) {
	srv, c := newPair(t)
	for _, tt := range []struct{ plain, code, sub string }{
		{`{"code":"40003","msg":"Insufficient Conditions","subCode":"isv.invalid-auth-relations","subMsg":"无效的授权关系"}`, "40003", "isv.invalid-auth-relations"},
		{`{"code":"20000","msg":"Service Currently Unavailable","subCode":"aop.unknow-error","subMsg":"系统繁忙"}`, "20000", "aop.unknow-error"},
		{`{"code":"40002","msg":"Invalid Arguments","subCode":"isv.invalid-encrypt"}`, "40002", "isv.invalid-encrypt"},
	} {
		_, err := c.DecryptPhone(srv.SealPhone([]byte(tt.plain)))
		if ae := apiErr(err); ae == nil || ae.Code != tt.code || ae.SubCode != tt.sub || ae.API != alipay.APIPhoneNumber {
			t.Errorf("%s: %v", tt.code, err)
		}
	}
	resp, sign := srv.PhoneResponse("alice")
	for name, in := range map[string][2][]byte{
		"no mobile":      {[]byte(`{"code":"10000","msg":"Success"}`)},
		"not JSON":       {[]byte(`mobile=1`)},
		"duplicate keys": {[]byte(`{"code":"10000","mobile":"1","mobile":"2"}`)},
	} {
		if _, err := c.DecryptPhone(srv.SealPhone(in[0])); !errors.Is(err, alipay.ErrDecrypt) || errors.Is(err, alipay.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrongKey := alipay.NewClient(appID, appKey(), srv.AlipayPublicKey(), alipay.WithAESKey(bytes.Repeat([]byte{1}, 16)))
	if _, err := wrongKey.DecryptPhone(resp, sign); !errors.Is(err, alipay.ErrDecrypt) {
		t.Errorf("wrong content key: %v", err)
	}
	for name, in := range map[string]struct {
		c          *alipay.Client
		resp, sign string
		want       error
	}{
		"no content key":    {alipay.NewClient(appID, appKey(), srv.AlipayPublicKey()), resp, sign, alipay.ErrInvalidInput},
		"short content key": {alipay.NewClient(appID, appKey(), srv.AlipayPublicKey(), alipay.WithAESKey([]byte("short"))), resp, sign, alipay.ErrInvalidInput},
		"no public key":     {alipay.NewClient(appID, appKey(), nil, alipay.WithAESKey(srv.AESKey())), resp, sign, alipay.ErrInvalidInput},
		"empty response":    {c, "", sign, alipay.ErrInvalidInput},
		"plaintext":         {c, `{"code":"40001","subCode":"isv.missing-encrypt-key"}`, sign, alipay.ErrInvalidInput},
		"no sign":           {c, resp, "", alipay.ErrInvalidInput},
		"sign not base64":   {c, resp, "%%%", alipay.ErrSignature},
		"another's sign":    {c, resp, srv.Sign([]byte(`"x"`)), alipay.ErrSignature},
		"bare-string sign":  {c, resp, srv.Sign([]byte(resp)), alipay.ErrSignature},
		"long":              {c, strings.Repeat("A", 70000), sign, alipay.ErrInvalidInput},
	} {
		if _, err := in.c.DecryptPhone(in.resp, in.sign); !errors.Is(err, in.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParsePhonePayload(t *testing.T) {
	for payload, ok := range map[string]bool{
		`{"response":"abc","sign":"s","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8"}`: true,
		`{"response":"abc","sign":"s"}`:                    true,
		`{"response":"abc","sign":"s","sign_type":"RSA"}`:  false,
		`{"response":"abc","sign":"s","encrypt_type":"X"}`: false,
		`["abc"]`:        false,
		`{"response":1}`: false,
		`not json`:       false,
	} {
		resp, sign, err := alipay.ParsePhonePayload([]byte(payload))
		if (err == nil) != ok || ok && (resp != "abc" || sign != "s") {
			t.Errorf("%s: %q %q %v", payload, resp, sign, err)
		}
	}
}
