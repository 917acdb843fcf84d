package kuaishou

import (
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Sentinel errors. Every error returned by this package that is not an
// *APIError wraps exactly one of them.
var (
	// ErrTimeout: the call did not complete before its deadline (see
	// WithTimeout). Timeouts are not retried.
	ErrTimeout = errors.New("kuaishou: timeout")
	// ErrUnavailable: Kuaishou could not be reached, after the one retry.
	ErrUnavailable = errors.New("kuaishou: unavailable")
	// ErrBadResponse: Kuaishou answered something unusable: an unexpected
	// HTTP status, HTML, a body that is not a JSON object, no result, or
	// result 1 without open_id or a valid session_key.
	ErrBadResponse = errors.New("kuaishou: unusable response")
	// ErrInvalidInput: the input is unusable before anything is sent or
	// decrypted: an empty, over-long or non-printable code, bad base64, a
	// key or IV that is not 16 bytes, a bad base URL.
	ErrInvalidInput = errors.New("kuaishou: invalid input")
	// ErrDecrypt: open data did not decrypt to one JSON object without
	// repeated keys (bad padding and bad JSON are one error).
	ErrDecrypt = errors.New("kuaishou: decrypt failed")
	// ErrWatermark: decrypted open data has no watermark, one for another
	// app id, or one older than WithMaxDataAge allows.
	ErrWatermark = errors.New("kuaishou: watermark mismatch")
)

// APICode2Session names the login API in APIError.API and error strings.
const APICode2Session = "code2session"

// APIError is an answer from Kuaishou whose result is not 1. Branch on
// Code (or the Is* predicates), never on Msg.
type APIError struct {
	// API is the API that answered: APICode2Session.
	API string
	// Code is Kuaishou's result.
	Code int
	// ErrorName is Kuaishou's error field (e.g. "invalid_request"), cleaned
	// like Msg, at most 64 bytes.
	ErrorName string
	// Msg is Kuaishou's error_msg, secrets and control characters
	// removed, at most 256 bytes.
	Msg string
}

// Error returns "kuaishou: <api>: result <code> (<error>): <msg>".
func (e *APIError) Error() string {
	return fmt.Sprintf("kuaishou: %s: result %d (%s): %s", e.API, e.Code, e.ErrorName, e.Msg)
}

// APICode returns Code, for the classification the platform clients
// share.
func (e *APIError) APICode() int { return e.Code }

func hasCode(err error, codes ...int) bool { return apicall.HasCode(err, codes...) }

// IsInvalidCode reports whether err is result 100200100: a wrong or empty
// parameter, which with a right app_id and app_secret is the js_code. The
// user should call ks.login again.
func IsInvalidCode(err error) bool { return hasCode(err, 100200100) }

// IsInvalidCredentials reports whether err is result 100200101: app_id
// and app_secret do not verify. A configuration error, not the user's
// fault.
func IsInvalidCredentials(err error) bool { return hasCode(err, 100200101) }

// Interface guards.
var _ apicall.Coded = (*APIError)(nil)
