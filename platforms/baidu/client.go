package baidu

import (
	"bytes"
	"context"
	"encoding/json"
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

// DefaultBaseURL is Baidu's smart-program server API, used unless
// WithBaseURL says otherwise.
const DefaultBaseURL = "https://spapi.baidu.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// maxBody caps what is read of any answer: real ones are well under 1 KiB.
const maxBody = 1 << 20

// maxCode caps a login code, to keep absurd input off the wire.
const maxCode = 1024

// retryDelay is the pause before the one retry of an unreachable Baidu.
const retryDelay = 100 * time.Millisecond

// Option configures a Client in NewClient.
type Option func(*Client)

// WithBaseURL sets the API base URL (default DefaultBaseURL,
// "https://spapi.baidu.com"). Tests point it at a baidutest.Server. A
// trailing slash is ignored. An unusable URL makes every call fail with
// ErrInvalidInput.
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
// Baidu (each attempt), with the API name (APICode2Session), the time it
// took and its error (nil on success). fn must be safe for concurrent use.
// Default: none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return func(c *Client) { c.observe = fn }
}

// WithClock sets the clock (default time.Now). The client keeps no
// time-dependent state today; the option exists so that every platform
// client is configured alike.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// Client calls Baidu's smart-program server API for one app. It is safe
// for concurrent use.
//
// A Client never prints its App Secret: String, GoString and Format
// redact it, whatever the verb.
type Client struct {
	appKey  string
	secret  string
	rawBase string
	base    *url.URL
	baseErr error
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
	observe func(api string, elapsed time.Duration, err error)
}

// NewClient returns a Client for the app whose App Key is appKey (the
// client_id of Baidu's API, 32 characters, which is what a gateway's
// app_id holds for Baidu) and whose App Secret is appSecret (Baidu's sk).
// Defaults: base URL DefaultBaseURL, timeout DefaultTimeout.
func NewClient(appKey, appSecret string, opts ...Option) *Client {
	c := &Client{
		appKey:  appKey,
		secret:  appSecret,
		rawBase: DefaultBaseURL,
		timeout: DefaultTimeout,
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{
			// Following a 307/308 would re-send the body, App Secret
			// included, wherever Location points.
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

// AppKey returns the App Key the Client was created with.
func (c *Client) AppKey() string { return c.appKey }

// String describes the client without its secret.
func (c Client) String() string {
	return fmt.Sprintf("baidu.Client{AppKey: %q, BaseURL: %q, Secret: [redacted]}", c.appKey, c.rawBase)
}

// GoString is String: %#v must not print the secret either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// redactor removes the App Secret, raw and form-escaped, from error text.
// A secret under 6 bytes is left alone: replacing it would mangle
// messages without protecting anything real.
func (c *Client) redactor() *strings.Replacer {
	if len(c.secret) < 6 {
		return strings.NewReplacer()
	}
	pairs := []string{c.secret, "[redacted]"}
	if q := url.QueryEscape(c.secret); q != c.secret {
		pairs = append(pairs, q, "[redacted]")
	}
	return strings.NewReplacer(pairs...)
}

// postForm performs one logical call: POST of form to path, retried once
// on a transport failure, the answer's body returned with its status.
func (c *Client) postForm(ctx context.Context, api, path string, form url.Values) (int, []byte, error) {
	if c.baseErr != nil {
		return 0, nil, newError(api, ErrInvalidInput, c.baseErr.Error())
	}
	u := *c.base
	u.Path = c.base.Path + path
	target := u.String()
	body := []byte(form.Encode())
	red := c.redactor()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, data, err := c.attempt(ctx, api, target, body, red)
		if c.observe != nil {
			c.observe(api, time.Since(start), err)
		}
		if err == nil || attempt == 2 || !errors.Is(err, ErrUnavailable) {
			return status, data, err
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctxError(api, ctx)
		case <-t.C:
		}
	}
}

func (c *Client) attempt(ctx context.Context, api, target string, body []byte, red *strings.Replacer) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, &callError{msg: "baidu: " + api + ": invalid input: cannot build request", kind: ErrInvalidInput, cause: sanitize(err, red)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, transportError(ctx, api, err, red)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, transportError(ctx, api, err, red)
	}
	if len(data) > maxBody {
		return 0, nil, newError(api, ErrBadResponse, "body larger than 1 MiB")
	}
	return resp.StatusCode, data, nil
}

// transportError classifies a failed exchange: timeout, cancellation by
// the caller, or Baidu unreachable. The cause is sanitized.
func transportError(ctx context.Context, api string, err error, red *strings.Replacer) error {
	cause := sanitize(err, red)
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &callError{msg: "baidu: " + api + ": timeout: " + cause.Error(), kind: ErrTimeout, cause: cause}
	case ctx.Err() != nil:
		return &callError{msg: "baidu: " + api + ": canceled: " + cause.Error(), kind: ctx.Err(), cause: cause}
	default:
		return &callError{msg: "baidu: " + api + ": unavailable: " + cause.Error(), kind: ErrUnavailable, cause: cause}
	}
}

// ctxError is the error of a call whose context ended while it waited.
func ctxError(api string, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &callError{msg: "baidu: " + api + ": timeout", kind: ErrTimeout, cause: context.DeadlineExceeded}
	}
	return &callError{msg: "baidu: " + api + ": canceled", kind: ctx.Err()}
}

// jsonObjectProblem says why data is not a JSON object, or "" if it is
// one as far as its first byte goes. It never quotes the body: a success
// body carries session_key.
func jsonObjectProblem(status int, data []byte) string {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) == 0 && status != http.StatusOK:
		return fmt.Sprintf("unexpected HTTP status %d", status)
	case len(trimmed) == 0:
		return "empty body"
	case trimmed[0] == '<':
		return fmt.Sprintf("HTML, not JSON (HTTP status %d)", status)
	case trimmed[0] != '{':
		return fmt.Sprintf("not a JSON object (HTTP status %d)", status)
	}
	return ""
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error, n int) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se) && se.Offset >= int64(n):
		return "truncated JSON"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has an unexpected type", clip(te.Field, 64))
	default:
		return "undecodable JSON"
	}
}

// cleanMsg makes a message from Baidu safe to log: control characters
// replaced (first, so that "sec\nret" cannot hide a secret), secrets
// removed, at most 256 bytes of valid UTF-8.
func cleanMsg(s string, red *strings.Replacer) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if red != nil {
		s = red.Replace(s)
	}
	return clip(s, 256)
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
