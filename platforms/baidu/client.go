package baidu

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// DefaultBaseURL is Baidu's smart-program server API, used unless
// WithBaseURL says otherwise.
const DefaultBaseURL = "https://spapi.baidu.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// Option configures a Client in NewClient.
type Option func(*Client)

// shared wraps an option of the plumbing every platform client shares.
func shared(o apicall.Option) Option {
	return func(c *Client) { c.opts = append(c.opts, o) }
}

// WithBaseURL sets the API base URL (default DefaultBaseURL,
// "https://spapi.baidu.com"). Tests point it at a baidutest.Server. A
// trailing slash is ignored. An unusable URL makes every call fail with
// ErrInvalidInput.
func WithBaseURL(u string) Option { return shared(apicall.WithBaseURL(u)) }

// WithHTTPClient sets the HTTP client (default: a client on a transport of
// its own that keeps 64 idle connections, following no redirects: following
// a 307/308 would re-send the body, App Secret included). A nil hc keeps
// the default.
func WithHTTPClient(hc *http.Client) Option { return shared(apicall.WithHTTPClient(hc)) }

// WithTimeout bounds every call, its retry included (default
// DefaultTimeout, 5 s). A zero or negative d keeps the default.
func WithTimeout(d time.Duration) Option { return shared(apicall.WithTimeout(d)) }

// WithObserver registers fn to be called after every HTTP exchange with
// Baidu (each attempt), with the API name (APICode2Session), the time it
// took and its error (nil on success). fn must be safe for concurrent use.
// Default: none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return shared(apicall.WithObserver(fn))
}

// WithClock sets the clock (default time.Now). The client keeps no
// time-dependent state today; the option exists so that every platform
// client is configured alike.
func WithClock(now func() time.Time) Option { return shared(apicall.WithClock(now)) }

// Client calls Baidu's smart-program server API for one app. It is safe
// for concurrent use.
//
// A Client never prints its App Secret: String, GoString and Format
// redact it, whatever the verb.
type Client struct {
	c    *apicall.Client
	opts []apicall.Option // collected by the options, for NewClient
}

// NewClient returns a Client for the app whose App Key is appKey (the
// client_id of Baidu's API, 32 characters, which is what a gateway's
// app_id holds for Baidu) and whose App Secret is appSecret (Baidu's sk).
// Defaults: base URL DefaultBaseURL, timeout DefaultTimeout.
func NewClient(appKey, appSecret string, opts ...Option) *Client {
	c := &Client{}
	for _, o := range opts {
		o(c)
	}
	c.c = apicall.NewClient(apicall.Platform{
		Prefix:  "baidu",
		BaseURL: DefaultBaseURL,
		Timeout: DefaultTimeout,
		Kinds: apicall.Kinds{Timeout: ErrTimeout, Unavailable: ErrUnavailable,
			BadResponse: ErrBadResponse, InvalidInput: ErrInvalidInput},
		ErrDecrypt:   ErrDecrypt,
		ErrWatermark: ErrWatermark,
	}, appKey, appSecret, c.opts)
	c.opts = nil
	return c
}

// CheckBaseURL reports whether raw can be a Client's base URL (an
// absolute http or https URL), as WithBaseURL needs it.
func CheckBaseURL(raw string) error {
	_, err := apicall.ParseBaseURL(raw)
	return err
}

// AppKey returns the App Key the Client was created with.
func (c *Client) AppKey() string { return c.c.AppID }

// String describes the client without its secret.
func (c Client) String() string {
	var appKey, base string
	if c.c != nil { // the zero Client prints too
		appKey, base = c.c.AppID, c.c.BaseURL()
	}
	return fmt.Sprintf("baidu.Client{AppKey: %q, BaseURL: %q, Secret: [redacted]}", appKey, base)
}

// GoString is String: %#v must not print the secret either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// jsonObjectProblem says why data is not a JSON object, or "" if it is
// one as far as its first byte goes. It never quotes the body: a success
// body carries session_key. Unlike the shared checks it names the HTTP
// status, not the Content-Type: Baidu's errors come with 400 or 401.
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
