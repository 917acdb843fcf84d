package kuaishou

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// DefaultBaseURL is the Kuaishou server API, used unless WithBaseURL says
// otherwise.
const DefaultBaseURL = "https://open.kuaishou.com"

// DefaultTimeout bounds every call of a Client unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// Option configures a Client in NewClient.
type Option = apicall.Option

// WithBaseURL sets the API base URL (default DefaultBaseURL). Tests point
// it at a kuaishoutest.Server. A trailing slash is ignored; a URL CheckBaseURL
// refuses makes every call fail with ErrInvalidInput.
func WithBaseURL(u string) Option { return apicall.WithBaseURL(u) }

// WithHTTPClient sets the HTTP client (default: one on a transport of its
// own that keeps 64 idle connections, following no redirects: a redirect
// would re-send the secret). nil keeps the default.
func WithHTTPClient(hc *http.Client) Option { return apicall.WithHTTPClient(hc) }

// WithTimeout bounds every call, the retry included (default
// DefaultTimeout, 5 s). Zero or negative keeps the default.
func WithTimeout(d time.Duration) Option { return apicall.WithTimeout(d) }

// WithObserver registers fn, called after every HTTP exchange (each
// attempt) with the API name, the time it took and its error (nil on
// success), for metrics. fn must be safe for concurrent use. Default:
// none.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return apicall.WithObserver(fn)
}

// WithMaxDataAge makes Decrypt refuse open data whose watermark.timestamp
// is further than d from now, either way (default 0: no age check).
func WithMaxDataAge(d time.Duration) Option { return apicall.WithMaxDataAge(d) }

// WithClock sets the clock of the watermark age check (default
// time.Now). nil keeps the default.
func WithClock(now func() time.Time) Option { return apicall.WithClock(now) }

// Client calls the Kuaishou server API for one mini program. It is safe for
// concurrent use. String, GoString and Format redact its secret.
type Client struct{ c *apicall.Client }

// NewClient returns a Client for the app appID with secret appSecret.
// Defaults: DefaultBaseURL, DefaultTimeout, no watermark age check.
func NewClient(appID, appSecret string, opts ...Option) *Client {
	return &Client{apicall.NewClient(apicall.Platform{
		Prefix:  "kuaishou",
		BaseURL: DefaultBaseURL,
		Timeout: DefaultTimeout,
		Kinds: apicall.Kinds{Timeout: ErrTimeout, Unavailable: ErrUnavailable,
			BadResponse: ErrBadResponse, InvalidInput: ErrInvalidInput},
		ErrDecrypt:   ErrDecrypt,
		ErrWatermark: ErrWatermark,
	}, appID, appSecret, opts)}
}

// CheckBaseURL reports whether raw can be a Client's base URL (an
// absolute http or https URL).
func CheckBaseURL(raw string) error {
	_, err := apicall.ParseBaseURL(raw)
	return err
}

// AppID returns the app id the Client was created with.
func (c *Client) AppID() string { return c.c.AppID }

// String describes the client without its secret.
func (c Client) String() string { return c.c.String() }

// GoString is String: %#v must not print the secret either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }
