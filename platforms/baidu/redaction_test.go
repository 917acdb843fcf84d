package baidu_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/baidu/baidutest"
)

// TestNoSecretInErrors forces every error path and checks that no error
// string carries the App Secret or a session_key.
func TestNoSecretInErrors(t *testing.T) {
	srv, c := newPair(t, baidu.WithTimeout(150*time.Millisecond))
	s := login(t, c, "alice")
	secrets := map[string]string{"App Secret": secret, "escaped App Secret": url.QueryEscape(secret), "session_key": s.SessionKey}
	closed := baidutest.NewServer(appKey, secret)
	closedURL := closed.URL
	closed.Close()

	errs := platformtest.NewErrors(t)
	add := errs.Add
	loginErr := func(cl *baidu.Client, setup func()) error {
		if setup != nil {
			setup()
		}
		_, err := cl.Code2Session(ctx(t), "code")
		return err
	}
	for _, code := range []string{"invalid_grant", "invalid_client", "invalid_request", "x"} {
		add(code, loginErr(c, func() { srv.FailNext(baidutest.APICode2Session, code, 1) }))
	}
	add("echoed secret", loginErr(c, func() {
		srv.RespondNext(baidutest.APICode2Session, 1, 401, "application/json", `{"error":"invalid_client","error_description":"bad sk `+secret+`"}`)
	}))
	add("echoed secret in the code", loginErr(c, func() {
		srv.RespondNext(baidutest.APICode2Session, 1, 400, "application/json", `{"error":"`+secret+`"}`)
	}))
	add("truncated, with the session key", loginErr(c, func() {
		srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"session_key":"`+s.SessionKey+`","openid":`)
	}))
	add("bad types, with the session key", loginErr(c, func() {
		srv.RespondNext(baidutest.APICode2Session, 1, 200, "application/json", `{"session_key":"`+s.SessionKey+`","openid":5}`)
	}))
	add("timeout", loginErr(c, func() { srv.SetDelay(baidutest.APICode2Session, 2*time.Second) }))
	srv.SetDelay(baidutest.APICode2Session, 0)
	add("refused", loginErr(baidu.NewClient(appKey, secret, baidu.WithBaseURL(closedURL)), nil))
	add("leaky transport", loginErr(baidu.NewClient(appKey, secret, baidu.WithBaseURL(srv.URL),
		baidu.WithHTTPClient(&http.Client{Transport: platformtest.LeakyTransport{}})), nil))
	for _, in := range [][3]string{
		{s.SessionKey, "", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey + "x", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", s.SessionKey + "!"},
	} {
		_, err := c.Decrypt(in[0], in[1], in[2])
		add("decrypt", err)
	}
	platformtest.NoSecrets(t, errs.All(), []any{c, *c, s, *s, baidu.Client{}}, secrets)
}
