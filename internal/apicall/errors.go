package apicall

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Kinds are the sentinel errors of the calling package. Every error of a
// Caller that is not the platform's own API error wraps one of them.
type Kinds struct {
	// Timeout: the call did not complete before its deadline.
	Timeout error
	// Unavailable: the platform could not be reached, after the retry.
	Unavailable error
	// BadResponse: an answer that cannot be used.
	BadResponse error
	// InvalidInput: the caller's input is unusable before anything is
	// sent.
	InvalidInput error
}

// callError is every non-API error of a call. Its message is built once,
// already redacted, and it unwraps to its sentinels and to a cause whose
// own message is redacted too.
type callError struct {
	msg   string
	kinds []error // the package's sentinels, or context.Canceled
	cause error   // may be nil
}

func (e *callError) Error() string { return e.msg }

func (e *callError) Unwrap() []error {
	if e.cause == nil {
		return e.kinds
	}
	return append(append([]error{}, e.kinds...), e.cause)
}

// NewError returns an error wrapping kind (a sentinel whose text starts
// with prefix + ": ") whose text is the sentinel's with api inserted after
// the prefix and ": " + detail appended: "qq: jscode2session: invalid
// input: empty code". detail must not quote a secret. The error wraps the
// extra sentinels too (Alipay's ErrSignature rides with another kind).
func NewError(prefix, api string, kind error, detail string, extra ...error) error {
	msg := kind.Error()
	if api != "" {
		msg = strings.Replace(msg, prefix+": ", prefix+": "+api+": ", 1)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return &callError{msg: msg, kinds: append([]error{kind}, extra...)}
}

// redactedError stands in for an error whose text may contain a secret. It
// keeps the redacted text and the well-known causes (so errors.Is(err,
// context.DeadlineExceeded) still works) but not the original error value.
type redactedError struct {
	msg     string
	timeout bool
	causes  []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Timeout() bool   { return e.timeout }
func (e *redactedError) Temporary() bool { return false }
func (e *redactedError) Unwrap() []error { return e.causes }

// wellKnown returns the causes a redactedError keeps. They carry no request
// data, so exposing them cannot leak anything.
func wellKnown() []error {
	return []error{
		context.Canceled, context.DeadlineExceeded, os.ErrDeadlineExceeded,
		io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EPIPE,
	}
}

// sanitize rewrites err so that neither its text nor anything reachable by
// errors.Unwrap holds the query string of the request (QQ sends the secret
// there) or the secret. net/http's *url.Error prints the full URL.
func (c *Caller) sanitize(err error) error {
	var ne net.Error
	red := &redactedError{timeout: errors.As(err, &ne) && ne.Timeout()}
	for _, k := range wellKnown() {
		if errors.Is(err, k) {
			red.causes = append(red.causes, k)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		red.msg = c.causeText(ue.Err.Error())
		return &url.Error{Op: ue.Op, URL: stripURL(ue.URL), Err: red}
	}
	red.msg = c.causeText(err.Error())
	return red
}

// causeText is the text a sanitized cause keeps: the secret removed, and
// with Config.CleanCauses one clipped line.
func (c *Caller) causeText(s string) string {
	s = c.redact.Replace(s)
	if c.cfg.CleanCauses {
		s = Clip(CleanText(s), 256)
	}
	return s
}

// stripURL keeps scheme, host and path: enough to tell which endpoint
// failed, without query, fragment or userinfo.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[redacted URL]"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// redactor removes s from error text, raw and query-escaped. A string
// shorter than 6 bytes is left alone: replacing it would mangle messages
// without protecting anything real.
func redactor(s string) *strings.Replacer {
	if len(s) < 6 {
		return strings.NewReplacer()
	}
	pairs := []string{s, "[redacted]"}
	if q := url.QueryEscape(s); q != s {
		pairs = append(pairs, q, "[redacted]")
	}
	return strings.NewReplacer(pairs...)
}

// CleanMsg makes a platform's error message safe to log: control
// characters (log injection) replaced first, so that "sec\nret" cannot
// become the secret, then the secret removed, then cut to 256 bytes of
// valid UTF-8.
func (c *Caller) CleanMsg(s string) string {
	return Clip(c.redact.Replace(CleanText(s)), 256)
}

// CleanText replaces control characters (log injection) by spaces.
func CleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Clip cuts s to at most n bytes without splitting a UTF-8 sequence, and
// makes it valid UTF-8.
func Clip(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "?")
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "?") + "..."
}

// MaxCode caps a login code. Real codes are 32 to 64 characters.
const MaxCode = 1024

// CheckCodeSize returns the detail of what is wrong with the size of a
// login code (empty, longer than MaxCode), or "" if nothing is: the
// check of the clients that send the code in a POST body and leave its
// characters to the platform (Baidu, Alipay).
func CheckCodeSize(code string) string {
	switch {
	case code == "":
		return "empty code"
	case len(code) > MaxCode:
		return "code longer than 1024 bytes"
	}
	return ""
}

// CheckCode returns the detail of what is wrong with a login code (empty,
// longer than MaxCode, invalid UTF-8, a control or white-space character),
// or "" if nothing is. Such a code is refused before any call: no real
// code has one, and it must not reach a query string or a log.
func CheckCode(code string) string {
	if d := CheckCodeSize(code); d != "" {
		return d
	}
	switch {
	case !utf8.ValidString(code):
		return "code is not valid UTF-8"
	case strings.ContainsFunc(code, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return "code has a non-printable character"
	}
	return ""
}

// Interface guards.
var _ net.Error = (*redactedError)(nil)
