package apicall

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Platform describes a platform client for NewClient.
type Platform struct {
	// Prefix of the package's error strings and its name, e.g. "qq".
	Prefix string
	// BaseURL and Timeout are the package's defaults.
	BaseURL string
	Timeout time.Duration
	// Kinds, ErrDecrypt and ErrWatermark are the package's sentinels.
	Kinds                    Kinds
	ErrDecrypt, ErrWatermark error
	// CleanCauses is Config.CleanCauses.
	CleanCauses bool
}

// Settings is what the options of a platform client set.
type Settings struct {
	cfg    Config
	maxAge time.Duration
	now    func() time.Time
}

// Option configures a platform client. Each platform package re-exports
// the constructors below with its own documentation.
type Option func(*Settings)

// WithBaseURL sets the API base URL.
func WithBaseURL(u string) Option { return func(s *Settings) { s.cfg.BaseURL = u } }

// WithHTTPClient sets the HTTP client; nil keeps the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *Settings) {
		if hc != nil {
			s.cfg.HTTPClient = hc
		}
	}
}

// WithTimeout bounds every call; zero or negative keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(s *Settings) {
		if d > 0 {
			s.cfg.Timeout = d
		}
	}
}

// WithObserver registers fn, called after every attempt.
func WithObserver(fn func(api string, elapsed time.Duration, err error)) Option {
	return func(s *Settings) { s.cfg.Observe = fn }
}

// WithMaxDataAge sets the watermark age limit; zero or negative is none.
func WithMaxDataAge(d time.Duration) Option {
	return func(s *Settings) {
		if d > 0 {
			s.maxAge = d
		}
	}
}

// WithClock sets the clock of the age check; nil keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Settings) {
		if now != nil {
			s.now = now
		}
	}
}

// Client is the body of a platform client: its app id and secret, its
// Caller and its Sealed half.
type Client struct {
	// AppID is the app the client is for.
	AppID string
	// Secret is the app secret, for the login request only.
	Secret string
	// Call performs the calls.
	Call *Caller
	// Sealed opens the app's open data.
	Sealed Sealed
	// Now is the clock WithClock set (time.Now by default).
	Now func() time.Time

	baseURL string
}

// NewClient builds the body of a client of p for appID and secret.
func NewClient(p Platform, appID, secret string, opts []Option) *Client {
	s := Settings{
		cfg: Config{Prefix: p.Prefix, Kinds: p.Kinds, BaseURL: p.BaseURL, Timeout: p.Timeout, Secret: secret,
			CleanCauses: p.CleanCauses},
		now: time.Now,
	}
	for _, o := range opts {
		o(&s)
	}
	return &Client{
		AppID:  appID,
		Secret: secret,
		Call:   New(s.cfg),
		Sealed: Sealed{Prefix: p.Prefix, AppID: appID, MaxAge: s.maxAge, Now: s.now,
			ErrInvalidInput: p.Kinds.InvalidInput, ErrDecrypt: p.ErrDecrypt, ErrWatermark: p.ErrWatermark},
		Now:     s.now,
		baseURL: s.cfg.BaseURL,
	}
}

// BaseURL returns the base URL as configured (not normalized), for a
// client's String.
func (c *Client) BaseURL() string { return c.baseURL }

// String describes the client without its secret, as <prefix>.Client.
func (c *Client) String() string {
	return fmt.Sprintf("%s.Client{AppID: %q, BaseURL: %q, Secret: [redacted]}", c.Sealed.Prefix, c.AppID, c.baseURL)
}

// Coded is an API error with a numeric code: the *APIError of each
// platform package.
type Coded interface {
	error
	APICode() int
}

// HasCode reports whether err is, or wraps, a Coded error with one of
// codes.
func HasCode(err error, codes ...int) bool {
	var ce Coded
	if !errors.As(err, &ce) {
		return false
	}
	for _, c := range codes {
		if ce.APICode() == c {
			return true
		}
	}
	return false
}
