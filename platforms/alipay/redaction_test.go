package alipay_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
)

// TestNoSecretInErrors forces the error paths and checks that no error,
// and no rendering of a Client, carries the private key or the content
// key, in any of their usual spellings.
func TestNoSecretInErrors(t *testing.T) {
	srv, c := newPair(t, alipay.WithTimeout(150*time.Millisecond))
	der, _ := x509.MarshalPKCS8PrivateKey(appKey())
	aes := srv.AESKey()
	secrets := map[string]string{
		"private key (base64 DER)": base64.StdEncoding.EncodeToString(der)[40:100],
		"private exponent":         appKey().D.String()[:40],
		"prime":                    appKey().Primes[0].String()[:40],
		"content key (base64)":     base64.StdEncoding.EncodeToString(aes),
		"content key (hex)":        hex.EncodeToString(aes),
		"content key (raw)":        string(aes),
	}
	errs := platformtest.NewErrors(t)
	add := errs.Add
	login := func(cl *alipay.Client, setup func()) error {
		if setup != nil {
			setup()
		}
		_, err := cl.Code2Session(ctx(t), "code")
		return err
	}
	for _, f := range [][2]string{{"40002", "isv.code-invalid"}, {"20000", "isp.unknow-error"}, {"40004", "x"}} {
		add(f[0], login(c, func() { srv.FailNext(alipaytest.APICode2Session, f[0], f[1], 2) }))
	}
	add("tampered", login(c, func() {
		srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", strings.Replace(srv.AnswerBody("x_response", `{"a":1}`), "x_", "alipay_system_oauth_token_", 1)+" ")
	}))
	add("timeout", login(c, func() { srv.SetDelay(alipaytest.APICode2Session, 2*time.Second) }))
	srv.SetDelay(alipaytest.APICode2Session, 0)
	add("leaky transport", login(alipay.NewClient(appID, appKey(), srv.AlipayPublicKey(), alipay.WithBaseURL(srv.URL),
		alipay.WithAESKey(aes), alipay.WithHTTPClient(&http.Client{Transport: platformtest.LeakyTransport{}})), nil))
	resp, sign := srv.PhoneResponse("alice")
	_, err := c.DecryptPhone(resp, sign+"x")
	add("phone sign", err)
	_, err = c.DecryptPhone(srv.SealPhone([]byte("not json")))
	add("phone plaintext", err)
	_, err = alipay.ParsePrivateKeyPEM(der[:100])
	add("parse", err)
	platformtest.NoSecrets(t, errs.All(), nil, secrets)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{c, *c, alipay.Client{}} {
			r := fmt.Sprintf(verb, v)
			for name, s := range secrets {
				if strings.Contains(r, s) || !strings.Contains(r, "redacted") {
					t.Errorf("%s of %T: %s or no redaction in %q", verb, v, name, r)
				}
			}
		}
	}
}
