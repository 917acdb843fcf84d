package douyin_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/douyin/douyintest"
)

// leakyTransport fails with an error quoting the whole request URL.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("cannot reach %s", r.URL)
}

func TestNoSecretInErrors(t *testing.T) {
	srv, c := newPair(t, douyin.WithTimeout(150*time.Millisecond))
	s, err := c.Code2Session(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	login := func(setup func()) error {
		setup()
		_, err := c.Code2Session(ctx(t), "code")
		return err
	}
	var errs []error
	for _, code := range []int{-1, 40015, 40017, 40018, 40019} {
		errs = append(errs, login(func() { srv.FailNext(code, 1+btoi(code == -1)) }))
	}
	errs = append(errs,
		login(func() {
			srv.RespondNext(1, 200, "text/plain", `{"err_no":40017,"err_tips":"bad secret `+secret+`","data":{}}`)
		}),
		login(func() {
			srv.RespondNext(1, 200, "application/json", `{"err_no":0,"data":{"session_key":"`+s.SessionKey+`","openid":`)
		}),
		login(func() {
			srv.RespondNext(1, 200, "application/json", `{"err_no":0,"data":{"session_key":"`+s.SessionKey+`","openid":5}}`)
		}),
		login(func() { srv.SetDelay(time.Second) }),
	)
	srv.SetDelay(0)
	closed := douyintest.NewServer(appID, secret)
	closed.Close()
	_, err = douyin.NewClient(appID, secret, douyin.WithBaseURL(closed.URL)).Code2Session(ctx(t), "code")
	errs = append(errs, err)
	_, err = douyin.NewClient(appID, secret, douyin.WithBaseURL(srv.URL), douyin.WithHTTPClient(&http.Client{Transport: leakyTransport{}})).Code2Session(ctx(t), "code")
	errs = append(errs, err)
	for _, in := range [][3]string{{s.SessionKey, "", "AAAAAAAAAAAAAAAAAAAAAA=="}, {s.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=="}, {s.SessionKey + "x", "AAAA", "AAAA"}} {
		_, err := c.Decrypt(in[0], in[1], in[2])
		errs = append(errs, err)
	}
	platformtest.NoSecrets(t, errs, []any{c, *c, s, *s}, map[string]string{"app secret": secret, "session_key": s.SessionKey})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
