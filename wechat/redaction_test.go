package wechat_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

// leakyTransport fails with an error quoting the whole request, as a
// careless transport or proxy library might.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("cannot reach %s (url %q)", r.URL, r.URL.String())
}

// renderings returns every way an error is likely to be printed, through
// its whole Unwrap tree.
func renderings(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, renderings(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, renderings(e)...)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		out = append(out, ue.URL)
	}
	return out
}

// TestNoSecretInErrors forces every error path and checks that no error
// string carries the app secret, an access token or a session_key.
func TestNoSecretInErrors(t *testing.T) {
	srv, c := newPair(t, wechat.WithTimeout(150*time.Millisecond))
	s := login(t, c, "alice")
	tok, err := c.TokenSource().Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"app secret":         secret,
		"escaped app secret": url.QueryEscape(secret),
		"access token":       tok.AccessToken,
		"session_key":        s.SessionKey,
		"signature":          wechat.UserStateSignature(s.SessionKey, ""),
	}
	sig := secrets["signature"]
	closed := wechattest.NewServer(appID, secret)
	closedURL := closed.URL
	closed.Close()

	var errs []error
	add := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	loginErr := func(setup func()) error {
		if setup != nil {
			setup()
		}
		_, err := c.Code2Session(ctx(t), "code")
		return err
	}
	phoneErr := func(setup func()) error {
		if setup != nil {
			setup()
		}
		_, err := c.PhoneNumber(ctx(t), "code", openidOf("code"))
		return err
	}
	checkErr := func(setup func()) error {
		setup()
		_, err := c.CheckSessionKey(ctx(t), s.OpenID, s.SessionKey)
		return err
	}
	resetErr := func(setup func()) error {
		setup()
		_, err := c.ResetUserSessionKey(ctx(t), s.OpenID, s.SessionKey)
		return err
	}
	for _, code := range []int{-1, 40029, 40163, 41008, 40226, 45011, 40013, 40125, 99999} {
		add(fmt.Sprint("login ", code), loginErr(func() { srv.FailNext(wechattest.APICode2Session, code, 2) }))
		add(fmt.Sprint("phone ", code), phoneErr(func() { srv.FailNext(wechattest.APIPhoneNumber, code, 2) }))
		add(fmt.Sprint("check ", code), checkErr(func() { srv.FailNext(wechattest.APICheckSession, code, 2) }))
		add(fmt.Sprint("reset ", code), resetErr(func() { srv.FailNext(wechattest.APIResetSessionKey, code, 2) }))
	}
	add("reset 87009", resetErr(func() { srv.FailNext(wechattest.APIResetSessionKey, 87009, 1) }))
	// WeChat echoing the signature or the key must not pass them on.
	add("echoed signature", checkErr(func() {
		srv.RespondNext(wechattest.APICheckSession, 1, 200, "application/json", `{"errcode":87008,"errmsg":"bad `+sig+` for `+s.SessionKey+`"}`)
	}))
	add("echoed signature, reset", resetErr(func() {
		srv.RespondNext(wechattest.APIResetSessionKey, 1, 200, "application/json", `{"errcode":87008,"errmsg":"bad `+sig+` with `+tok.AccessToken+`"}`)
	}))
	add("reset truncated, with the key", resetErr(func() {
		srv.RespondNext(wechattest.APIResetSessionKey, 1, 200, "application/json", `{"openid":"x","session_key":"`+s.SessionKey+`"`)
	}))
	add("check HTML", checkErr(func() { srv.RespondNext(wechattest.APICheckSession, 1, 200, "text/html", "<html>"+sig) }))
	add("check timeout", checkErr(func() { srv.SetDelay(wechattest.APICheckSession, 2*time.Second) }))
	add("reset timeout", resetErr(func() { srv.SetDelay(wechattest.APIResetSessionKey, 2*time.Second) }))
	// WeChat echoing the secret or the token in errmsg must not pass it on.
	add("echoed secret", loginErr(func() {
		srv.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"errcode":40125,"errmsg":"invalid appsecret `+secret+`"}`)
	}))
	add("echoed token", phoneErr(func() {
		srv.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", `{"errcode":40014,"errmsg":"bad token `+tok.AccessToken+`"}`)
	}))
	add("login HTML", loginErr(func() { srv.RespondNext(wechattest.APICode2Session, 1, 200, "text/html", "<html>") }))
	add("login truncated, with the session key", loginErr(func() {
		srv.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"session_key":"`+s.SessionKey+`","openid":`)
	}))
	add("login bad types, with the session key", loginErr(func() {
		srv.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"session_key":"`+s.SessionKey+`","openid":5}`)
	}))
	add("phone 500", phoneErr(func() { srv.RespondNext(wechattest.APIPhoneNumber, 1, 500, "", "oops") }))
	add("login timeout", loginErr(func() { srv.SetDelay(wechattest.APICode2Session, 2*time.Second) }))
	add("phone timeout", phoneErr(func() { srv.SetDelay(wechattest.APIPhoneNumber, 2*time.Second) }))

	// Token-bearing URLs and secret-bearing URLs through failing transports.
	refused := wechat.NewClient(appID, secret, wechat.WithBaseURL(closedURL))
	_, err = refused.Code2Session(ctx(t), "code")
	add("login refused", err)
	_, err = refused.PhoneNumber(ctx(t), "code", openidOf("code"))
	add("token refused", err)
	_, err = refused.CheckSessionKey(ctx(t), s.OpenID, s.SessionKey)
	add("token refused, check", err)
	leaky := wechat.NewClient(appID, secret, wechat.WithBaseURL(srv.URL), wechat.WithHTTPClient(&http.Client{Transport: leakyTransport{}}))
	_, err = leaky.Code2Session(ctx(t), "code")
	add("leaky transport, login", err)
	// A client with a valid cached token whose phone call goes through
	// the leaky transport: prime the cache through a normal client first.
	mixed := &http.Client{Transport: &flakyTransport{}}
	mc := wechat.NewClient(appID, secret, wechat.WithBaseURL(srv.URL), wechat.WithHTTPClient(mixed))
	mtok, err := mc.TokenSource().Token(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	secrets["access token (2)"] = mtok.AccessToken
	mixed.Transport = leakyTransport{}
	_, err = mc.PhoneNumber(ctx(t), "code", openidOf("code"))
	add("leaky transport, phone", err)
	_, err = mc.CheckSessionKey(ctx(t), s.OpenID, s.SessionKey)
	add("leaky transport, check", err)
	_, err = mc.ResetUserSessionKey(ctx(t), s.OpenID, s.SessionKey)
	add("leaky transport, reset", err)

	// Decryption with the real session key.
	for _, in := range [][3]string{
		{s.SessionKey, "", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey + "x", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAA=="},
		{s.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", s.SessionKey + "!"},
	} {
		_, err := c.Decrypt(in[0], in[1], in[2])
		add("decrypt", err)
	}
	if len(errs) < 55 {
		t.Fatalf("only %d error paths exercised", len(errs))
	}
	for _, err := range errs {
		for _, r := range renderings(err) {
			for what, s := range secrets {
				if contains(r, s) {
					t.Errorf("%s leaks in %q", what, r)
				}
			}
		}
	}
	// And the values themselves.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{c, *c, s, *s, tok, *tok} {
			r := fmt.Sprintf(verb, v)
			for what, s := range secrets {
				if contains(r, s) {
					t.Errorf("%s leaks in %s of %T: %q", what, verb, v, r)
				}
			}
		}
	}
}
