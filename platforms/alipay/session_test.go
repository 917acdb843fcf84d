package alipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay/alipaytest"
)

func TestCode2Session(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 3, 5, 0, time.UTC)
	srv, c := newPair(t, alipay.WithClock(func() time.Time { return now }))
	s, err := c.Code2Session(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.OpenID != srv.OpenID("alice") || s.UserID != "" || s.SessionKey != "" {
		t.Errorf("session = %v", s)
	}
	f := srv.LastForm()
	for k, want := range map[string]string{
		"app_id": appID, "method": "alipay.system.oauth.token", "format": "JSON", "charset": "utf-8",
		"sign_type": "RSA2", "version": "1.0", "grant_type": "authorization_code", "code": "alice",
		"timestamp": "2026-12-02 14:03:05", // UTC+8
	} {
		if f.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, f.Get(k), want)
		}
	}
	if _, err := c.Code2Session(ctx(t), "alice"); !alipay.IsInvalidCode(err) {
		t.Errorf("a used code: %v", err)
	}

	srv.SetOpenIDScheme(false)
	s, err = c.Code2Session(ctx(t), "bob")
	if err != nil || s.OpenID != alipaytest.UserID("bob") || s.UserID != s.OpenID || !strings.HasPrefix(s.OpenID, "2088") {
		t.Errorf("user_id scheme: %v, %v", s, err)
	}
}

func TestCode2SessionRefusals(t *testing.T) {
	srv, c := newPair(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	bad := func(err error) bool {
		return errors.Is(err, alipay.ErrBadResponse) && errors.Is(err, alipay.ErrSignature)
	}
	inner := `{"open_id":"0abc","access_token":"x"}`
	tests := []struct {
		name   string
		code   string
		client *alipay.Client
		setup  func()
		check  func(error) bool
	}{
		{name: "bad code", code: "bad", check: alipay.IsInvalidCode},
		{name: "empty code", code: "", check: func(err error) bool { return errors.Is(err, alipay.ErrInvalidInput) }},
		{name: "long code", code: strings.Repeat("a", 2000), check: func(err error) bool { return errors.Is(err, alipay.ErrInvalidInput) }},
		{name: "our key is not the one Alipay has", code: "c1",
			client: alipay.NewClient(appID, other, srv.AlipayPublicKey(), alipay.WithBaseURL(srv.URL)),
			check: func(err error) bool {
				return alipay.IsInvalidCredentials(err) && apiErr(err).SubCode == "isv.invalid-signature"
			}},
		{name: "unknown app id: unsigned", code: "c2",
			client: alipay.NewClient("2021999", appKey(), srv.AlipayPublicKey(), alipay.WithBaseURL(srv.URL)),
			check: func(err error) bool {
				return bad(err) && strings.Contains(err.Error(), "isv.invalid-app-id") && apiErr(err) == nil
			}},
		{name: "answer signed by someone else", code: "c3",
			client: alipay.NewClient(appID, appKey(), &other.PublicKey, alipay.WithBaseURL(srv.URL)), check: bad},
		{name: "no private key", code: "c4", client: alipay.NewClient(appID, nil, srv.AlipayPublicKey(), alipay.WithBaseURL(srv.URL)),
			check: func(err error) bool { return errors.Is(err, alipay.ErrInvalidInput) }},
		{name: "no public key", code: "c5", client: alipay.NewClient(appID, appKey(), nil, alipay.WithBaseURL(srv.URL)),
			check: func(err error) bool { return errors.Is(err, alipay.ErrInvalidInput) }},
		{name: "bad base URL", code: "c6", client: alipay.NewClient(appID, appKey(), srv.AlipayPublicKey(), alipay.WithBaseURL("x")),
			check: func(err error) bool { return errors.Is(err, alipay.ErrInvalidInput) }},
		{name: "tampered answer", code: "c7", setup: func() {
			body := srv.AnswerBody("alipay_system_oauth_token_response", inner)
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", strings.Replace(body, "0abc", "0abd", 1))
		}, check: bad},
		{name: "re-encoded answer", code: "c8", setup: func() {
			body := srv.AnswerBody("alipay_system_oauth_token_response", `{"open_id": "0abc"}`)
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", strings.Replace(body, `"open_id": "0abc"`, `"open_id":"0abc"`, 1))
		}, check: bad},
		{name: "unsigned success", code: "c9", setup: func() {
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", `{"alipay_system_oauth_token_response":`+inner+`}`)
		}, check: bad},
		{name: "repeated key", code: "c10", setup: func() {
			body := srv.AnswerBody("alipay_system_oauth_token_response", inner)
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json",
				strings.Replace(body, `{"alipay`, `{"alipay_system_oauth_token_response":{"open_id":"0evil"},"alipay`, 1))
		}, check: func(err error) bool { return errors.Is(err, alipay.ErrBadResponse) }},
		{name: "both objects", code: "c11", setup: func() {
			body := srv.AnswerBody("alipay_system_oauth_token_response", inner)
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", strings.Replace(body, `{"alipay`, `{"error_response":{},"alipay`, 1))
		}, check: func(err error) bool { return errors.Is(err, alipay.ErrBadResponse) }},
		{name: "no identity", code: "c12", setup: func() {
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", srv.AnswerBody("alipay_system_oauth_token_response", `{"access_token":"x"}`))
		}, check: func(err error) bool {
			return errors.Is(err, alipay.ErrBadResponse) && !errors.Is(err, alipay.ErrSignature)
		}},
		{name: "verified code other than 10000", code: "c13", setup: func() {
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json",
				srv.AnswerBody("alipay_system_oauth_token_response", `{"code":"40004","msg":"Business Failed","sub_code":"isv.x"}`))
		}, check: func(err error) bool { return apiErr(err) != nil && apiErr(err).Code == "40004" }},
		{name: "html", code: "c14", setup: func() { srv.RespondNext(alipaytest.APICode2Session, 1, 200, "text/html", "<html>") },
			check: func(err error) bool { return errors.Is(err, alipay.ErrBadResponse) }},
		{name: "502", code: "c15", setup: func() { srv.RespondNext(alipaytest.APICode2Session, 1, 502, "text/plain", "x") },
			check: func(err error) bool { return errors.Is(err, alipay.ErrBadResponse) }},
		{name: "trailing data", code: "c16", setup: func() {
			srv.RespondNext(alipaytest.APICode2Session, 1, 200, "application/json", srv.AnswerBody("alipay_system_oauth_token_response", inner)+"{}")
		}, check: func(err error) bool { return errors.Is(err, alipay.ErrBadResponse) }},
		{name: "injected 40006", code: "c17", setup: func() { srv.FailNext(alipaytest.APICode2Session, "40006", "isv.insufficient-isv-permissions", 1) },
			check: alipay.IsInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			cl := c
			if tt.client != nil {
				cl = tt.client
			}
			s, err := cl.Code2Session(ctx(t), tt.code)
			if err == nil || s != nil || !tt.check(err) {
				t.Fatalf("got %v, %v", s, err)
			}
		})
	}
}

type failOnce struct{ n atomic.Int32 }

func (f *failOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(1) == 1 {
		return nil, errors.New("connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestCode2SessionRetries(t *testing.T) {
	var attempts atomic.Int32
	srv, c := newPair(t, alipay.WithObserver(func(string, time.Duration, error) { attempts.Add(1) }))
	srv.FailNext(alipaytest.APICode2Session, "20000", "isp.unknow-error", 1)
	if _, err := c.Code2Session(ctx(t), "alice"); err != nil || attempts.Load() != 2 {
		t.Fatalf("busy once: %v after %d attempts", err, attempts.Load())
	}
	srv.FailNext(alipaytest.APICode2Session, "20000", "aop.unknow-error", 2)
	if _, err := c.Code2Session(ctx(t), "bob"); !alipay.IsSystemBusy(err) {
		t.Fatalf("busy twice: %v", err)
	}
	_, c2 := newPair(t, alipay.WithHTTPClient(&http.Client{Transport: &failOnce{}}))
	if _, err := c2.Code2Session(ctx(t), "carol"); err != nil {
		t.Fatalf("reset once: %v", err)
	}
}

func TestCode2SessionTimeout(t *testing.T) {
	srv, c := newPair(t, alipay.WithTimeout(100*time.Millisecond))
	srv.SetDelay(alipaytest.APICode2Session, 2*time.Second)
	start := time.Now()
	if _, err := c.Code2Session(ctx(t), "alice"); !errors.Is(err, alipay.ErrTimeout) || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}
