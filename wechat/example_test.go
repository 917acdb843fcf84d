package wechat_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func Example() {
	// A fake WeChat; in production, leave out WithBaseURL.
	srv := wechattest.NewServer("wx0123456789abcdef", "app-secret")
	defer srv.Close()
	c := wechat.NewClient("wx0123456789abcdef", "app-secret", wechat.WithBaseURL(srv.URL))
	ctx := context.Background()

	// The mini program sends the code of wx.login().
	s, err := c.Code2Session(ctx, "alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.OpenID == srv.OpenID("alice"), s) // the session_key is redacted

	// A code works once.
	_, err = c.Code2Session(ctx, "alice")
	fmt.Println(wechat.IsInvalidCode(err))

	// Open data the mini program received, sealed with the session_key.
	data, iv, _ := srv.SealPhone("alice")
	p, err := c.DecryptPhone(s.SessionKey, data, iv)
	fmt.Println(p.CountryCode, len(p.PurePhoneNumber), err)

	// Data of another app fails the watermark check.
	data, iv, _ = srv.Seal("alice", map[string]any{"watermark": map[string]any{"appid": "wxother"}})
	_, err = c.Decrypt(s.SessionKey, data, iv)
	fmt.Println(errors.Is(err, wechat.ErrWatermark))
	// Output:
	// true wechat.Session{OpenID: "o6SScb8OjtG3SxbIJbR10PkZ4knl", UnionID: "", SessionKey: [redacted]}
	// true
	// 86 11 <nil>
	// true
}

// The user-state signature of wx.requestVirtualPayment: the upstream builds
// signData, the server that holds the session_key signs it. The key and
// vector are WeChat's own worked example.
func ExampleUserStateSignature() {
	sessionKey := "o0q0otL8aEzpcZL/FT9WsQ==" // as code2Session gave it: base64 text, not decoded
	fmt.Println(wechat.UserStateSignature(sessionKey, `{"foo":"bar"}`))
	// checkSessionKey and resetUserSessionKey sign the empty string.
	fmt.Println(wechat.UserStateSignature(sessionKey, ""))
	// Output:
	// 654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b
	// 46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128
}

func ExampleClient_CheckSessionKey() {
	srv := wechattest.NewServer("wx0123456789abcdef", "app-secret")
	defer srv.Close()
	c := wechat.NewClient("wx0123456789abcdef", "app-secret", wechat.WithBaseURL(srv.URL))
	ctx := context.Background()
	s, _ := c.Code2Session(ctx, "alice")

	valid, err := c.CheckSessionKey(ctx, s.OpenID, s.SessionKey)
	fmt.Println(valid, err)

	// WeChat replaces the key without a login the server sees.
	srv.RotateSessionKey("alice")
	valid, err = c.CheckSessionKey(ctx, s.OpenID, s.SessionKey)
	fmt.Println(valid, err)
	// Output:
	// true <nil>
	// false <nil>
}
