package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// Sentinel errors. Every error returned by this package that is not an
// *APIError wraps exactly one of them, so callers can branch with errors.Is.
var (
	// ErrTimeout: the call did not complete before its deadline (the
	// client's timeout, see WithTimeout, or an earlier deadline of the
	// caller's context). Timeouts are not retried.
	ErrTimeout = errors.New("wechat: timeout")

	// ErrUnavailable: WeChat could not be reached (connection refused,
	// DNS failure, connection reset), after the one retry.
	ErrUnavailable = errors.New("wechat: unavailable")

	// ErrBadResponse: WeChat answered something unusable: an unexpected
	// HTTP status, HTML, a body that is not a JSON object, truncated JSON,
	// or a success answer missing its required fields.
	ErrBadResponse = errors.New("wechat: unusable response")

	// ErrInvalidInput: the caller's input is unusable before anything is
	// sent or decrypted: an empty code, bad base64, a session key or IV
	// that is not 16 bytes, a ciphertext that is not a non-zero multiple
	// of 16 bytes.
	ErrInvalidInput = errors.New("wechat: invalid input")

	// ErrDecrypt: open data did not decrypt: bad PKCS#7 padding, or the
	// plaintext is not a JSON object (typically: sealed with an older
	// session_key). Deliberately one error with one message for both, see
	// decrypt.go.
	ErrDecrypt = errors.New("wechat: decrypt failed")

	// ErrWatermark: decrypted open data has no watermark, a watermark
	// for another app id, or one older than the maximum age
	// (WithMaxDataAge); or getuserphonenumber answered a phone_info
	// without a watermark appid, or watermarked for another app id.
	ErrWatermark = errors.New("wechat: watermark mismatch")
)

// Names of the WeChat APIs, as used in APIError.API and in error strings.
const (
	APICode2Session    = "jscode2session"
	APIStableToken     = "stable_token"
	APIPhoneNumber     = "getuserphonenumber"
	APICheckSession    = "checksession"
	APIResetSessionKey = "resetusersessionkey"
)

// APIError is an answer from WeChat carrying a non-zero errcode.
//
// Branch on Code (or use the Is* predicates), never on Msg: WeChat's
// messages change and carry a request id ("rid: ...").
type APIError struct {
	// API is the WeChat API that answered, e.g. "jscode2session".
	API string
	// Code is WeChat's errcode.
	Code int
	// Msg is WeChat's errmsg, with any secret or token the client knows
	// of removed, and shortened to at most 256 bytes.
	Msg string
}

// Error returns "wechat: <api>: errcode <code>: <msg>". It never contains a
// URL, the app secret or an access token.
func (e *APIError) Error() string {
	return fmt.Sprintf("wechat: %s: errcode %d: %s", e.API, e.Code, e.Msg)
}

func hasCode(err error, codes ...int) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}

// IsInvalidCode reports whether err is WeChat rejecting the login or phone
// code: 40029 (invalid code), 40163 (code already used), 41008 (missing
// code). The user should call wx.login again.
func IsInvalidCode(err error) bool { return hasCode(err, 40029, 40163, 41008) }

// IsCodeNotForUser reports whether err is 40003 (invalid openid) from
// getuserphonenumber: the phone code was not made for the openid it was
// posted with. WeChat documents the check but not its errcode; 40003 is
// WeChat's general "invalid openid", and what wechattest answers.
func IsCodeNotForUser(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.API == APIPhoneNumber && ae.Code == 40003
}

// IsInvalidSignature reports whether err is 87009: a user-state signature
// WeChat refused, i.e. the session key it was made with is not the one
// WeChat holds for the user (replaced by a later login or a data
// pre-fetch, or expired). CheckSessionKey answers it as valid == false.
func IsInvalidSignature(err error) bool { return hasCode(err, 87009) }

// IsUserBlocked reports whether err is 40226: WeChat refuses a high-risk
// user.
func IsUserBlocked(err error) bool { return hasCode(err, 40226) }

// IsRateLimited reports whether err is 45011: API minute-quota reached.
func IsRateLimited(err error) bool { return hasCode(err, 45011) }

// IsInvalidToken reports whether err is an access token WeChat no longer
// accepts: 40001 (invalid credential), 40014 (invalid access_token) or
// 42001 (access_token expired). PhoneNumber, CheckSessionKey and
// ResetUserSessionKey already refresh once on these.
func IsInvalidToken(err error) bool { return hasCode(err, 40001, 40014, 42001) }

// IsSystemBusy reports whether err is -1: WeChat is busy. The client has
// already retried once.
func IsSystemBusy(err error) bool { return hasCode(err, -1) }

// IsInvalidCredentials reports whether err is 40013 (invalid appid) or
// 40125 (invalid appsecret): a configuration error, not the user's fault.
func IsInvalidCredentials(err error) bool { return hasCode(err, 40013, 40125) }

// callError is every non-API error of a WeChat call. Its message is built
// once, already redacted, and it unwraps to its sentinel and to a cause
// whose own message is redacted too: nothing reachable through Unwrap holds
// the raw text of a net/http error.
type callError struct {
	msg   string
	kind  error // one of the sentinels, or context.Canceled
	cause error // may be nil
}

func (e *callError) Error() string { return e.msg }

func (e *callError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func newError(api string, kind error, detail string) error {
	msg := kind.Error()
	if api != "" {
		msg = strings.Replace(msg, "wechat: ", "wechat: "+api+": ", 1)
	}
	if detail != "" {
		msg += ": " + detail
	}
	return &callError{msg: msg, kind: kind}
}

// redactedError stands in for an error whose text may contain a secret. It
// keeps the redacted text and the well-known causes (so errors.Is(err,
// context.DeadlineExceeded) or syscall.ECONNREFUSED still work) but not the
// original error value.
type redactedError struct {
	msg     string
	timeout bool
	causes  []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Timeout() bool   { return e.timeout }
func (e *redactedError) Temporary() bool { return false }
func (e *redactedError) Unwrap() []error { return e.causes }

var _ net.Error = (*redactedError)(nil)

// wellKnown returns the causes a redactedError keeps. They carry no
// request data, so exposing them cannot leak anything.
func wellKnown() []error {
	return []error{
		context.Canceled, context.DeadlineExceeded, os.ErrDeadlineExceeded,
		io.EOF, io.ErrUnexpectedEOF,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EPIPE,
	}
}

// sanitize rewrites err so that neither its text nor anything reachable by
// errors.Unwrap contains the query string of the request (app secret, code,
// access token) or any of the strings in secrets.
//
// Why: net/http returns *url.Error{URL: <full URL>}, and Error() prints
// that URL, so `GET ...?appid=..&secret=..` would reach logs verbatim.
func sanitize(err error, r *strings.Replacer) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	red := &redactedError{timeout: timeout}
	for _, k := range wellKnown() {
		if errors.Is(err, k) {
			red.causes = append(red.causes, k)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		red.msg = r.Replace(ue.Err.Error())
		return &url.Error{Op: ue.Op, URL: stripURL(ue.URL), Err: red}
	}
	red.msg = r.Replace(err.Error())
	return red
}

// stripURL keeps scheme, host and path: enough to tell which endpoint
// failed, without query (secret, code, access_token), fragment or userinfo.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[redacted URL]"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
