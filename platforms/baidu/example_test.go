package baidu_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

func Example() {
	// A fake Baidu; in production, leave out WithBaseURL.
	srv := baidutest.NewServer("WPGsbTTGEQ2VRnNcEIjyo5nT1wGxc3PZ", "app-secret")
	defer srv.Close()
	c := baidu.NewClient("WPGsbTTGEQ2VRnNcEIjyo5nT1wGxc3PZ", "app-secret", baidu.WithBaseURL(srv.URL))
	ctx := context.Background()

	// The smart program sends the code of swan.getLoginCode().
	s, err := c.Code2Session(ctx, "alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.OpenID == srv.OpenID("alice"), s) // the session_key is redacted

	// A code works once.
	_, err = c.Code2Session(ctx, "alice")
	fmt.Println(baidu.IsInvalidCode(err))

	// The phone button's data, sealed with the session_key.
	data, iv, _ := srv.SealPhone("alice")
	p, err := c.DecryptPhone(s.SessionKey, data, iv)
	fmt.Println(len(p.PurePhoneNumber), err)

	// Data sealed for another App Key fails the check.
	data, iv, _ = baidutest.SealWithKey(s.SessionKey, "another-app-key", []byte(`{"mobile":"1"}`))
	_, err = c.Decrypt(s.SessionKey, data, iv)
	fmt.Println(errors.Is(err, baidu.ErrWatermark))
	// Output:
	// true baidu.Session{OpenID: "6BW04LONDBXyOTcXzHH_S4oFsm", UnionID: "", SessionKey: [redacted]}
	// true
	// 11 <nil>
	// true
}
