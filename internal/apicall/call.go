package apicall

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
)

// maxBody caps what is read of any answer. Real answers are well under
// 1 KiB; the cap keeps a broken or hostile upstream from making us buffer
// without end.
const maxBody = 1 << 20

// retryDelay is the pause before the one retry: long enough not to hammer,
// short enough to fit in the timeout.
const retryDelay = 100 * time.Millisecond

// Config is what a platform client sets through its options.
type Config struct {
	// Prefix starts every sentinel's text and error string, e.g. "qq".
	Prefix string
	// Kinds are the package's sentinels.
	Kinds Kinds
	// BaseURL is the API base; a trailing slash is ignored.
	BaseURL string
	// HTTPClient sends the requests; nil is NewHTTPClient(): a
	// transport of its own that keeps idle connections, no redirects.
	HTTPClient *http.Client
	// Timeout bounds every call, retry included; must be positive.
	Timeout time.Duration
	// Observe, if set, is called after every attempt.
	Observe func(api string, elapsed time.Duration, err error)
	// Secret is the app secret, removed from every error.
	Secret string
	// CleanCauses also replaces control characters in the text of a
	// transport error's cause and clips it to 256 bytes (Alipay, whose
	// requests hold no secret to redact, keeps causes to one short line).
	CleanCauses bool
}

// Caller performs the calls of one platform client. It is safe for
// concurrent use.
type Caller struct {
	cfg     Config
	base    *url.URL
	baseErr error
	hc      *http.Client
	redact  *strings.Replacer
}

// New returns a Caller for cfg. A bad BaseURL is reported by every call
// (ErrInvalidInput of the package), not here: NewClient has no error.
func New(cfg Config) *Caller {
	c := &Caller{cfg: cfg, hc: cfg.HTTPClient, redact: redactor(cfg.Secret)}
	if c.hc == nil {
		c.hc = NewHTTPClient()
	}
	c.base, c.baseErr = ParseBaseURL(cfg.BaseURL)
	return c
}

// ParseBaseURL parses raw as a base URL: an absolute http or https URL,
// trailing slash ignored.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("base URL is not an absolute http(s) URL")
	}
	return u, nil
}

// Request is one logical call.
type Request struct {
	// API names the call in errors and for the observer.
	API string
	// Method and Path (under the base URL) of the request.
	Method, Path string
	// Query is the query string, if any.
	Query url.Values
	// Form, if set, is sent as an application/x-www-form-urlencoded body.
	Form url.Values
	// JSON, if set, is sent as an application/json body.
	JSON any
	// Status reads the platform's status out of an answer that is a JSON
	// object: nil for success, the platform's API error otherwise, or
	// ErrBadStatus wrapped if the status fields cannot be read.
	Status func(body []byte) error
	// Busy reports whether an API error is worth the one retry (nil: only
	// transport failures are retried).
	Busy func(error) bool
	// Encode, if set, builds the body and its Content-Type afresh for
	// every attempt (a signed request with a timestamp); it replaces Form
	// and JSON. Its error ends the call as it is.
	Encode func() (body []byte, contentType string, err error)
	// Decode, if set, replaces the checks of an answer (HTTP status,
	// HTML, JSON object, Status) and the decoding into out: it reads one
	// answer and returns the attempt's error, which the observer sees and
	// Busy judges. out is not used.
	Decode func(status int, contentType string, body []byte) error
}

// ErrBadStatus is what a Request.Status returns (wrapped or not) when the
// status fields of an answer have the wrong type.
var ErrBadStatus = errors.New("status fields have an unexpected type")

// Do performs r within the Caller's timeout, retrying once on a transport
// failure or a busy answer, and decodes a successful answer into out.
func (c *Caller) Do(ctx context.Context, r Request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.Check(r.API); err != nil {
		return err
	}
	body, ctype, err := encodeBody(r)
	if err != nil {
		return c.fail(r.API, c.cfg.Kinds.InvalidInput, "cannot encode request")
	}
	u := *c.base
	u.Path = c.base.Path + r.Path
	u.RawQuery = r.Query.Encode()
	target := u.String()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := c.attempt(ctx, r, target, body, ctype, out)
		if c.cfg.Observe != nil {
			c.cfg.Observe(r.API, time.Since(start), err)
		}
		if err == nil || attempt == 2 || !c.retryable(r, err) {
			return err
		}
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return c.ctxError(r.API, ctx)
		case <-t.C:
		}
	}
}

// Check returns the error every call of api gets from a bad base URL
// (the package's ErrInvalidInput), or nil: for a client that has checks
// of its own to make after that one and before any call.
func (c *Caller) Check(api string) error {
	if c.baseErr != nil {
		return c.fail(api, c.cfg.Kinds.InvalidInput, c.baseErr.Error())
	}
	return nil
}

func encodeBody(r Request) (body []byte, ctype string, err error) {
	switch {
	case r.Form != nil:
		return []byte(r.Form.Encode()), "application/x-www-form-urlencoded", nil
	case r.JSON != nil:
		b, err := json.Marshal(r.JSON)
		return b, "application/json", err
	}
	return nil, "", nil
}

// retryable: only what is likely gone on a second try. A timeout is not:
// it has used up the budget. Other API errors are answers, not accidents.
func (c *Caller) retryable(r Request, err error) bool {
	return errors.Is(err, c.cfg.Kinds.Unavailable) || r.Busy != nil && r.Busy(err)
}

func (c *Caller) attempt(ctx context.Context, r Request, target string, body []byte, ctype string, out any) error {
	if r.Encode != nil {
		var err error
		if body, ctype, err = r.Encode(); err != nil {
			return err
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, rd)
	if err != nil {
		return &callError{msg: c.fail(r.API, c.cfg.Kinds.InvalidInput, "cannot build request").Error(), kinds: []error{c.cfg.Kinds.InvalidInput}, cause: c.sanitize(err)}
	}
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(ctx, r.API, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return c.transportError(ctx, r.API, err)
	}
	if len(data) > maxBody {
		return c.fail(r.API, c.cfg.Kinds.BadResponse, "body larger than 1 MiB")
	}
	if r.Decode != nil {
		return r.Decode(resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	return c.decode(r, resp.StatusCode, resp.Header.Get("Content-Type"), data, out)
}

// Decode is the answer half of Do, for fuzzing a platform's decoder: an
// HTTP status, a Content-Type and a body in, out filled or an error.
func (c *Caller) Decode(r Request, status int, contentType string, data []byte, out any) error {
	return c.decode(r, status, contentType, data, out)
}

// decode turns one HTTP answer into out or an error. The Content-Type is
// not trusted (platforms answer JSON as text/plain). Error details name
// the shape of the problem, never the body: a success body carries the
// session key.
func (c *Caller) decode(r Request, status int, contentType string, data []byte, out any) error {
	bad := c.cfg.Kinds.BadResponse
	if status != http.StatusOK {
		return c.fail(r.API, bad, fmt.Sprintf("unexpected HTTP status %d", status))
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return c.fail(r.API, bad, "empty body")
	case trimmed[0] == '<':
		return c.fail(r.API, bad, fmt.Sprintf("HTML, not JSON (Content-Type %q)", Clip(contentType, 64)))
	case trimmed[0] != '{':
		return c.fail(r.API, bad, fmt.Sprintf("not a JSON object (Content-Type %q)", Clip(contentType, 64)))
	}
	if !json.Valid(data) {
		return c.fail(r.API, bad, JSONProblem(json.Unmarshal(data, new(any)), len(data)))
	}
	if err := r.Status(data); err != nil {
		if errors.Is(err, ErrBadStatus) {
			return c.fail(r.API, bad, ErrBadStatus.Error())
		}
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return c.fail(r.API, bad, JSONProblem(err, len(data)))
	}
	return nil
}

// JSONProblem describes an error of decoding n bytes of JSON without
// quoting the input.
func JSONProblem(err error, n int) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se) && se.Offset >= int64(n):
		return "truncated JSON"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has an unexpected type", Clip(te.Field, 64))
	default:
		return "undecodable JSON"
	}
}

func (c *Caller) fail(api string, kind error, detail string) error {
	return NewError(c.cfg.Prefix, api, kind, detail)
}

// transportError classifies a failed exchange: timeout, cancellation by
// the caller, or the platform unreachable. The cause is sanitized.
func (c *Caller) transportError(ctx context.Context, api string, err error) error {
	cause := c.sanitize(err)
	head := c.cfg.Prefix + ": " + api + ": "
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &callError{msg: head + "timeout: " + cause.Error(), kinds: []error{c.cfg.Kinds.Timeout}, cause: cause}
	case ctx.Err() != nil:
		return &callError{msg: head + "canceled: " + cause.Error(), kinds: []error{ctx.Err()}, cause: cause}
	default:
		return &callError{msg: head + "unavailable: " + cause.Error(), kinds: []error{c.cfg.Kinds.Unavailable}, cause: cause}
	}
}

// ctxError is the error of a call whose context ended while it waited.
func (c *Caller) ctxError(api string, ctx context.Context) error {
	head := c.cfg.Prefix + ": " + api + ": "
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &callError{msg: head + "timeout", kinds: []error{c.cfg.Kinds.Timeout}, cause: context.DeadlineExceeded}
	}
	return &callError{msg: head + "canceled", kinds: []error{ctx.Err()}}
}
