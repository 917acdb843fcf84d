package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultBaseURL is Alipay's open-platform gateway host, used unless
// WithBaseURL says otherwise (the sandbox is
// https://openapi-sandbox.dl.alipaydev.com).
const DefaultBaseURL = "https://openapi.alipay.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// maxBody caps what is read of any answer: real ones are around 1 KiB.
const maxBody = 1 << 20

// maxCode caps an auth code, to keep absurd input off the wire.
const maxCode = 1024

// retryDelay is the pause before the one retry of a busy (20000) or
// unreachable Alipay.
const retryDelay = 100 * time.Millisecond

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

// WithBaseURL sets the gateway's base URL (default DefaultBaseURL,
// "https://openapi.alipay.com"; calls go to <base>/gateway.do). Tests
// point it at an alipaytest.Server. A trailing slash is ignored. An
// unusable URL makes every call fail with ErrInvalidInput.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.rawBase = u }
}

// WithHTTPClient sets the HTTP client (default: a client on
// http.DefaultTransport that does not follow redirects). A nil hc keeps
// the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds every call, its retry included (default
// DefaultTimeout, 5 s). A zero or negative d keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithObserver registers fn to be called after every HTTP exchange with
// Alipay (each attempt), with the API name (APICode2Session), the time it
// took and its error (nil on success). fn must be safe for concurrent use.
// Default: none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return func(c *Client) { c.observe = fn }
}

// WithClock sets the clock of the timestamp parameter (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

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
	appID   string
	priv    *rsa.PrivateKey
	pub     *rsa.PublicKey
	aesKey  []byte
	rawBase string
	base    *url.URL
	baseErr error
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
	observe func(api string, elapsed time.Duration, err error)
}

// NewClient returns a Client for the app appID that signs its calls with
// appPrivateKey and verifies Alipay's answers with alipayPublicKey (see
// ParsePrivateKeyPEM and ParsePublicKeyPEM). A nil key makes every call
// that needs it fail with ErrInvalidInput. Defaults: base URL
// DefaultBaseURL, timeout DefaultTimeout, no content key.
func NewClient(appID string, appPrivateKey *rsa.PrivateKey, alipayPublicKey *rsa.PublicKey, opts ...Option) *Client {
	c := &Client{
		appID:   appID,
		priv:    appPrivateKey,
		pub:     alipayPublicKey,
		rawBase: DefaultBaseURL,
		timeout: DefaultTimeout,
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{
			// The gateway never redirects; following one would send
			// the signed request wherever Location points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c.base, c.baseErr = parseBaseURL(c.rawBase)
	return c
}

// CheckBaseURL reports whether raw can be a Client's base URL (an
// absolute http or https URL), as WithBaseURL needs it.
func CheckBaseURL(raw string) error {
	_, err := parseBaseURL(raw)
	return err
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("base URL is not an absolute http(s) URL")
	}
	return u, nil
}

// AppID returns the app id the Client was created with.
func (c *Client) AppID() string { return c.appID }

// String describes the client without its keys.
func (c Client) String() string {
	return fmt.Sprintf("alipay.Client{AppID: %q, BaseURL: %q, Keys: [redacted]}", c.appID, c.rawBase)
}

// GoString is String: %#v must not print the keys either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb can reach the
// private key or the content key.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// call signs and posts one gateway call of method with the API's own
// params, retried once on a transport failure or a busy Alipay, and
// returns the verified object of the answer.
func (c *Client) call(ctx context.Context, api, method string, params url.Values) (*gatewayObject, error) {
	switch {
	case c.baseErr != nil:
		return nil, newError(api, ErrInvalidInput, c.baseErr.Error())
	case c.priv == nil:
		return nil, newError(api, ErrInvalidInput, "no app private key")
	case c.pub == nil:
		return nil, newError(api, ErrInvalidInput, "no Alipay public key")
	}
	u := *c.base
	u.Path = c.base.Path + "/gateway.do"
	u.RawQuery = "charset=utf-8" // how the gateway reads the body
	target := u.String()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		obj, err := c.attempt(ctx, api, method, target, params)
		if err == nil && obj.err != nil {
			err = obj.err
		}
		if c.observe != nil {
			c.observe(api, time.Since(start), err)
		}
		if err == nil || attempt == 2 || !errors.Is(err, ErrUnavailable) && !IsSystemBusy(err) {
			return obj, err
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxError(api, ctx)
		case <-t.C:
		}
	}
}

// form returns the signed parameters of one attempt: the common ones of
// Alipay's gateway (公共请求参数) with a fresh timestamp, the API's own,
// and sign.
func (c *Client) form(api, method string, params url.Values) (url.Values, error) {
	form := url.Values{
		"app_id":    {c.appID},
		"method":    {method},
		"format":    {"JSON"},
		"charset":   {"utf-8"},
		"sign_type": {"RSA2"},
		"timestamp": {c.now().In(beijing()).Format(timestampLayout)},
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

func (c *Client) attempt(ctx context.Context, api, method, target string, params url.Values) (*gatewayObject, error) {
	form, err := c.form(api, method, params)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &callError{msg: "alipay: " + api + ": invalid input: cannot build request", kinds: []error{ErrInvalidInput}, cause: sanitize(err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, api, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, transportError(ctx, api, err)
	}
	if len(data) > maxBody {
		return nil, newError(api, ErrBadResponse, "body larger than 1 MiB")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newError(api, ErrBadResponse, fmt.Sprintf("unexpected HTTP status %d", resp.StatusCode))
	}
	return readAnswer(api, method, data, c.pub)
}

// transportError classifies a failed exchange: timeout, cancellation by
// the caller, or Alipay unreachable. The cause is sanitized.
func transportError(ctx context.Context, api string, err error) error {
	cause := sanitize(err)
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &callError{msg: "alipay: " + api + ": timeout: " + cause.Error(), kinds: []error{ErrTimeout}, cause: cause}
	case ctx.Err() != nil:
		return &callError{msg: "alipay: " + api + ": canceled: " + cause.Error(), kinds: []error{ctx.Err()}, cause: cause}
	default:
		return &callError{msg: "alipay: " + api + ": unavailable: " + cause.Error(), kinds: []error{ErrUnavailable}, cause: cause}
	}
}

// ctxError is the error of a call whose context ended while it waited.
func ctxError(api string, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &callError{msg: "alipay: " + api + ": timeout", kinds: []error{ErrTimeout, context.DeadlineExceeded}}
	}
	return &callError{msg: "alipay: " + api + ": canceled", kinds: []error{ctx.Err()}}
}

// cleanText replaces control characters (log injection) by spaces.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "?")
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "?") + "..."
}
