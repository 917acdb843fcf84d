package alipay_test

import (
	"context"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
)

func Example() {
	// The app's key pair: in production, ParsePrivateKeyPEM of the
	// app private key file, and ParsePublicKeyPEM of Alipay's public key.
	app := appKey()
	srv := alipaytest.NewServer("2021000000000000", &app.PublicKey)
	defer srv.Close()
	alipayPub, _ := alipay.ParsePublicKeyPEM(srv.AlipayPublicKeyPEM())
	c := alipay.NewClient("2021000000000000", app, alipayPub,
		alipay.WithBaseURL(srv.URL), alipay.WithAESKey(srv.AESKey()))
	ctx := context.Background()

	// The mini program sends the authCode of my.getAuthCode.
	s, err := c.Code2Session(ctx, "alice")
	fmt.Println(s.OpenID == srv.OpenID("alice"), err)

	// A code works once.
	_, err = c.Code2Session(ctx, "alice")
	fmt.Println(alipay.IsInvalidCode(err))

	// The phone button: res.response of my.getPhoneNumber.
	resp, sign, _ := alipay.ParsePhonePayload([]byte(srv.PhonePayload("alice")))
	p, err := c.DecryptPhone(resp, sign)
	fmt.Println(len(p.PurePhoneNumber), err)
	// Output:
	// true <nil>
	// true
	// 11 <nil>
}
