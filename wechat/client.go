package wechat

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

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// DefaultBaseURL is the WeChat server API, used unless WithBaseURL says
// otherwise.
const DefaultBaseURL = "https://api.weixin.qq.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// maxBody caps what is read of any WeChat answer. Real answers are well
// under 1 KiB; the cap keeps a broken or hostile upstream from making us
// buffer without end.
const maxBody = 1 << 20

// maxCode caps a login or phone code. Real codes are 32 characters; the cap
// keeps absurd input off the wire.
const maxCode = 1024

// retryDelay is the pause before the one retry of a busy (-1) or
// unreachable WeChat: long enough not to hammer, short enough to fit in
// the timeout.
const retryDelay = 100 * time.Millisecond

// Option configures a Client in NewClient.
type Option func(*Client)

// WithBaseURL sets the API base URL (default DefaultBaseURL,
// "https://api.weixin.qq.com"). Tests point it at a wechattest.Server. A
// trailing slash is ignored. An unparsable URL makes every call fail with
// ErrInvalidInput.
func WithBaseURL(u string) Option {
	return func(c *Client) { c.rawBase = u }
}

// WithHTTPClient sets the HTTP client (default: a client on a transport of
// its own that keeps 64 idle connections, following no redirects). A nil hc
// keeps the default. The client's own Timeout, if any, still applies on top
// of WithTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds every call (Code2Session, PhoneNumber,
// CheckSessionKey, ResetUserSessionKey, a token fetch), retries and token refresh included, through the request context
// (default DefaultTimeout, 5 s). A zero or negative d keeps the default: an
// unbounded call to WeChat is never what a login server wants.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithMaxDataAge makes Decrypt reject open data whose watermark.timestamp is
// further than d from now, in either direction (default 0: no age check,
// because WeChat does not document how old legitimate data may be).
func WithMaxDataAge(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.maxAge = d
		}
	}
}

// WithClock sets the clock used for token expiry and the watermark age
// check (default time.Now). For tests.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithObserver registers fn to be called after every HTTP exchange with
// WeChat (each attempt, so a retried call reports twice), with the API name
// (APICode2Session, APIStableToken, APIPhoneNumber, APICheckSession,
// APIResetSessionKey), the time it took and
// its error (nil on success). For metrics. fn must be safe for concurrent
// use and should be fast. Default: none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return func(c *Client) { c.observe = fn }
}

// Client calls the WeChat server API for one Mini Program. It is safe for
// concurrent use; create one per app id and share it, so that all callers
// share one cached access token.
//
// A Client never prints its app secret: String, GoString and Format
// redact it, whatever the verb.
type Client struct {
	appID   string
	secret  string
	rawBase string
	base    *url.URL
	baseErr error
	hc      *http.Client
	timeout time.Duration
	maxAge  time.Duration
	now     func() time.Time
	observe func(api string, elapsed time.Duration, err error)
	ts      *tokenSource
}

// NewClient returns a Client for the app appID with secret appSecret.
// Defaults: base URL DefaultBaseURL, timeout DefaultTimeout, no watermark
// age check, the clock time.Now.
func NewClient(appID, appSecret string, opts ...Option) *Client {
	c := &Client{
		appID:   appID,
		secret:  appSecret,
		rawBase: DefaultBaseURL,
		timeout: DefaultTimeout,
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		// WeChat never redirects (NewHTTPClient follows none), and a
		// storm needs more than Go's 2 idle connections per host.
		c.hc = apicall.NewHTTPClient()
	}
	// Checked here, reported by every call: NewClient has no error to
	// return, and a typo must not send the secret somewhere odd. A
	// program can check the URL first with CheckBaseURL.
	c.base, c.baseErr = parseBaseURL(c.rawBase)
	c.ts = &tokenSource{c: c}
	return c
}

// CheckBaseURL reports whether raw can be a Client's base URL (an
// absolute http or https URL), as WithBaseURL needs it. A Client made
// with one that cannot answers every call with ErrInvalidInput.
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

// String describes the client without its secret.
func (c Client) String() string {
	return fmt.Sprintf("wechat.Client{AppID: %q, BaseURL: %q, Secret: [redacted]}", c.appID, c.rawBase)
}

// GoString is String: %#v must not print the secret either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb (%x, %q, %+v...)
// can reach the unexported secret field.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// TokenSource returns the Client's access-token source: cached until
// shortly before expiry, fetched by one caller at a time, shared by every
// caller of this Client.
func (c *Client) TokenSource() TokenSource { return c.ts }

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// redactor removes from error text every secret this call knows of: the
// app secret and, for token-bearing calls, the access token, raw and
// query-escaped. Strings shorter than 6 bytes are left alone: replacing
// them would mangle messages without protecting anything real.
func (c *Client) redactor(extra ...string) *strings.Replacer {
	var pairs []string
	for _, s := range append([]string{c.secret}, extra...) {
		if len(s) < 6 {
			continue
		}
		pairs = append(pairs, s, "[redacted]")
		if q := url.QueryEscape(s); q != s {
			pairs = append(pairs, q, "[redacted]")
		}
	}
	return strings.NewReplacer(pairs...)
}

// request is one logical call to WeChat.
type request struct {
	api    string
	method string
	path   string
	query  url.Values
	body   []byte
	redact *strings.Replacer
}

// do performs r, retrying once on a transport failure or a busy WeChat
// (-1), and decodes a successful answer into out.
func (c *Client) do(ctx context.Context, r request, out any) error {
	if c.baseErr != nil {
		return newError(r.api, ErrInvalidInput, c.baseErr.Error())
	}
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	target := u.String()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := c.attempt(ctx, r, target, out)
		if c.observe != nil {
			c.observe(r.api, time.Since(start), err)
		}
		if err == nil || attempt == 2 || !retryable(err) {
			return err
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctxError(r.api, ctx)
		case <-t.C:
		}
	}
}

// retryable: only what is likely gone on a second try. A timeout is not:
// it has used up the budget. Other API errors are answers, not accidents.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || IsSystemBusy(err)
}

func (c *Client) attempt(ctx context.Context, r request, target string, out any) error {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return &callError{msg: "wechat: " + r.api + ": invalid input: cannot build request", kind: ErrInvalidInput, cause: sanitize(err, r.redact)}
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, r.api, err, r.redact)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return transportError(ctx, r.api, err, r.redact)
	}
	if len(data) > maxBody {
		return newError(r.api, ErrBadResponse, "body larger than 1 MiB")
	}
	return decodeResponse(r.api, resp.StatusCode, resp.Header.Get("Content-Type"), data, out, r.redact)
}

// transportError classifies a failed exchange: timeout, cancellation by
// the caller, or WeChat unreachable. The cause is sanitized: see sanitize.
func transportError(ctx context.Context, api string, err error, red *strings.Replacer) error {
	cause := sanitize(err, red)
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &callError{msg: "wechat: " + api + ": timeout: " + cause.Error(), kind: ErrTimeout, cause: cause}
	case ctx.Err() != nil:
		return &callError{msg: "wechat: " + api + ": canceled: " + cause.Error(), kind: ctx.Err(), cause: cause}
	default:
		return &callError{msg: "wechat: " + api + ": unavailable: " + cause.Error(), kind: ErrUnavailable, cause: cause}
	}
}

// ctxError is the error of a call whose context ended while it waited.
func ctxError(api string, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &callError{msg: "wechat: " + api + ": timeout", kind: ErrTimeout, cause: context.DeadlineExceeded}
	}
	return &callError{msg: "wechat: " + api + ": canceled", kind: ctx.Err()}
}

// apiStatus is the error part every WeChat answer may carry.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// decodeResponse turns one HTTP answer into out or an error.
//
// The Content-Type is ignored on purpose: jscode2session answers JSON as
// text/plain. Success is a missing or zero errcode; errmsg is never
// examined. Error details name the shape of the problem, never the body:
// a success body carries session_key.
func decodeResponse(api string, status int, contentType string, data []byte, out any, red *strings.Replacer) error {
	if status != http.StatusOK {
		return newError(api, ErrBadResponse, fmt.Sprintf("unexpected HTTP status %d", status))
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return newError(api, ErrBadResponse, "empty body")
	case trimmed[0] == '<':
		return newError(api, ErrBadResponse, fmt.Sprintf("HTML, not JSON (Content-Type %q)", clip(contentType, 64)))
	case trimmed[0] != '{':
		return newError(api, ErrBadResponse, fmt.Sprintf("not a JSON object (Content-Type %q)", clip(contentType, 64)))
	}
	var st apiStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return newError(api, ErrBadResponse, jsonProblem(err, len(data)))
	}
	if st.ErrCode != 0 {
		return &APIError{API: api, Code: st.ErrCode, Msg: cleanMsg(st.ErrMsg, red)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return newError(api, ErrBadResponse, jsonProblem(err, len(data)))
	}
	return nil
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

// cleanMsg makes WeChat's errmsg safe to log: secrets removed, control
// characters (log injection) replaced, at most 256 bytes of valid UTF-8.
//
// Control characters go first: replaced after redaction, they could turn
// "sec\nret" into a secret containing a space.
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
