package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// DefaultBaseURL is Alipay's open-platform gateway host, used unless
// WithBaseURL says otherwise (the sandbox is
// https://openapi-sandbox.dl.alipaydev.com).
const DefaultBaseURL = "https://openapi.alipay.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// timestampLayout is the format of the timestamp parameter, "yyyy-MM-dd
// HH:mm:ss" in Alipay's doc (公共请求参数), in Beijing time: Alipay's SDK
// constants say DATE_TIMEZONE = "GMT+8".
const timestampLayout = "2006-01-02 15:04:05"

// beijing is UTC+8, the zone of Alipay's timestamps. A fixed zone, not
// time.LoadLocation("Asia/Shanghai"): the same since 1991, and no tzdata
// needed on the host.
func beijing() *time.Location { return time.FixedZone("CST", 8*60*60) }

// Option configures a Client in NewClient.
type Option func(*Client)

// shared wraps an option of the plumbing every platform client shares.
func shared(o apicall.Option) Option {
	return func(c *Client) { c.opts = append(c.opts, o) }
}

// WithBaseURL sets the gateway's base URL (default DefaultBaseURL,
// "https://openapi.alipay.com"; calls go to <base>/gateway.do). Tests
// point it at an alipaytest.Server. A trailing slash is ignored. An
// unusable URL makes every call fail with ErrInvalidInput.
func WithBaseURL(u string) Option { return shared(apicall.WithBaseURL(u)) }

// WithHTTPClient sets the HTTP client (default: a client on a transport of
// its own that keeps 64 idle connections, following no redirects: the
// gateway never redirects, and following one would send the signed request
// wherever Location points). A nil hc keeps the default.
func WithHTTPClient(hc *http.Client) Option { return shared(apicall.WithHTTPClient(hc)) }

// WithTimeout bounds every call, its retry included (default
// DefaultTimeout, 5 s). A zero or negative d keeps the default.
func WithTimeout(d time.Duration) Option { return shared(apicall.WithTimeout(d)) }

// WithObserver registers fn to be called after every HTTP exchange with
// Alipay (each attempt), with the API name (APICode2Session), the time it
// took and its error (nil on success). fn must be safe for concurrent use.
// Default: none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return shared(apicall.WithObserver(fn))
}

// WithClock sets the clock of the timestamp parameter (default time.Now).
func WithClock(now func() time.Time) Option { return shared(apicall.WithClock(now)) }

// WithAESKey sets the content key (接口内容加密方式, AES) that decrypts
// phone numbers: 16 bytes, see ParseAESKey. Without one, or with a key of
// another size, DecryptPhone fails with ErrInvalidInput. The key is
// copied.
func WithAESKey(key []byte) Option {
	return func(c *Client) { c.aesKey = bytes.Clone(key) }
}

// Client calls Alipay's open-platform gateway for one mini program. It is
// safe for concurrent use.
//
// A Client never prints its keys: String, GoString and Format show the
// app id and base URL only, whatever the verb.
type Client struct {
	c      *apicall.Client
	priv   *rsa.PrivateKey
	pub    *rsa.PublicKey
	aesKey []byte
	opts   []apicall.Option // collected by the options, for NewClient
}

// NewClient returns a Client for the app appID that signs its calls with
// appPrivateKey and verifies Alipay's answers with alipayPublicKey (see
// ParsePrivateKeyPEM and ParsePublicKeyPEM). A nil key makes every call
// that needs it fail with ErrInvalidInput. Defaults: base URL
// DefaultBaseURL, timeout DefaultTimeout, no content key.
func NewClient(appID string, appPrivateKey *rsa.PrivateKey, alipayPublicKey *rsa.PublicKey, opts ...Option) *Client {
	c := &Client{priv: appPrivateKey, pub: alipayPublicKey}
	for _, o := range opts {
		o(c)
	}
	c.c = apicall.NewClient(apicall.Platform{
		Prefix:  "alipay",
		BaseURL: DefaultBaseURL,
		Timeout: DefaultTimeout,
		Kinds: apicall.Kinds{Timeout: ErrTimeout, Unavailable: ErrUnavailable,
			BadResponse: ErrBadResponse, InvalidInput: ErrInvalidInput},
		ErrDecrypt: ErrDecrypt,
		// Nothing secret is sent (the keys never leave): the causes of
		// transport errors are kept, as one clipped line.
		CleanCauses: true,
	}, appID, "", c.opts)
	c.opts = nil
	return c
}

// CheckBaseURL reports whether raw can be a Client's base URL (an
// absolute http or https URL), as WithBaseURL needs it.
func CheckBaseURL(raw string) error {
	_, err := apicall.ParseBaseURL(raw)
	return err
}

// AppID returns the app id the Client was created with.
func (c *Client) AppID() string { return c.c.AppID }

// String describes the client without its keys.
func (c Client) String() string {
	var appID, base string
	if c.c != nil { // the zero Client prints too
		appID, base = c.c.AppID, c.c.BaseURL()
	}
	return fmt.Sprintf("alipay.Client{AppID: %q, BaseURL: %q, Keys: [redacted]}", appID, base)
}

// GoString is String: %#v must not print the keys either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb can reach the
// private key or the content key.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// call signs and posts one gateway call of method with the API's own
// params, retried once on a transport failure or a busy Alipay, and
// returns the verified object of the answer. Every attempt is signed
// afresh: the timestamp is part of what is signed.
func (c *Client) call(ctx context.Context, api, method string, params url.Values) (*gatewayObject, error) {
	if err := c.c.Call.Check(api); err != nil {
		return nil, err
	}
	switch {
	case c.priv == nil:
		return nil, newError(api, ErrInvalidInput, "no app private key")
	case c.pub == nil:
		return nil, newError(api, ErrInvalidInput, "no Alipay public key")
	}
	var obj *gatewayObject
	err := c.c.Call.Do(ctx, apicall.Request{
		API:    api,
		Method: http.MethodPost,
		Path:   "/gateway.do",
		Query:  url.Values{"charset": {"utf-8"}}, // how the gateway reads the body
		Encode: func() ([]byte, string, error) {
			form, err := c.form(api, method, params)
			if err != nil {
				return nil, "", err
			}
			return []byte(form.Encode()), "application/x-www-form-urlencoded;charset=utf-8", nil
		},
		Decode: func(status int, _ string, data []byte) error {
			if status != http.StatusOK {
				return newError(api, ErrBadResponse, fmt.Sprintf("unexpected HTTP status %d", status))
			}
			o, err := readAnswer(api, method, data, c.pub)
			if err != nil {
				return err
			}
			if obj = o; o.err != nil {
				return o.err
			}
			return nil
		},
		Busy: IsSystemBusy,
	}, nil)
	return obj, err
}

// form returns the signed parameters of one attempt: the common ones of
// Alipay's gateway (公共请求参数) with a fresh timestamp, the API's own,
// and sign.
func (c *Client) form(api, method string, params url.Values) (url.Values, error) {
	form := url.Values{
		"app_id":    {c.c.AppID},
		"method":    {method},
		"format":    {"JSON"},
		"charset":   {"utf-8"},
		"sign_type": {"RSA2"},
		"timestamp": {c.c.Now().In(beijing()).Format(timestampLayout)},
		"version":   {"1.0"},
	}
	for k, v := range params {
		form[k] = v
	}
	sign, err := Sign(c.priv, []byte(SignContent(form)))
	if err != nil {
		return nil, newError(api, ErrInvalidInput, "cannot sign the request")
	}
	form.Set("sign", sign)
	return form, nil
}

// cleanText replaces control characters (log injection) by spaces.
func cleanText(s string) string { return apicall.CleanText(s) }

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string { return apicall.Clip(s, n) }
