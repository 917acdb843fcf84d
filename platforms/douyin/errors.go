package douyin

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
	ErrTimeout = errors.New("douyin: timeout")
	// ErrUnavailable: Douyin could not be reached, after the one retry.
	ErrUnavailable = errors.New("douyin: unavailable")
	// ErrBadResponse: Douyin answered something unusable: an unexpected
	// HTTP status, HTML, a body that is not a JSON object, or err_no 0
	// without data.openid or a valid data.session_key.
	ErrBadResponse = errors.New("douyin: unusable response")
	// ErrInvalidInput: the input is unusable before anything is sent or
	// decrypted: an empty, over-long or non-printable code, bad base64, a
	// key or IV that is not 16 bytes, a bad base URL.
	ErrInvalidInput = errors.New("douyin: invalid input")
	// ErrDecrypt: open data did not decrypt to one JSON object without
	// repeated keys (bad padding and bad JSON are one error).
	ErrDecrypt = errors.New("douyin: decrypt failed")
	// ErrWatermark: decrypted open data has no watermark, one for another
	// app id, or one older than WithMaxDataAge allows.
	ErrWatermark = errors.New("douyin: watermark mismatch")
)

// APICode2Session names the login API in APIError.API and error strings.
const APICode2Session = "jscode2session"

// APIError is an answer from Douyin carrying a non-zero err_no. Branch on
// Code (or the Is* predicates), never on Msg.
type APIError struct {
	// API is the API that answered: APICode2Session.
	API string
	// Code is Douyin's err_no.
	Code int
	// Msg is Douyin's err_tips, secrets and control characters removed,
	// at most 256 bytes.
	Msg string
}

// Error returns "douyin: <api>: err_no <code>: <msg>".
func (e *APIError) Error() string {
	return fmt.Sprintf("douyin: %s: err_no %d: %s", e.API, e.Code, e.Msg)
}

// APICode returns Code, for the classification the platform clients
// share.
func (e *APIError) APICode() int { return e.Code }

func hasCode(err error, codes ...int) bool { return apicall.HasCode(err, codes...) }

// IsInvalidCode reports whether err is Douyin refusing the login code:
// 40018 (bad code: wrong, expired or used) or 40019 (bad anonymous_code).
// The user should call tt.login again.
func IsInvalidCode(err error) bool { return hasCode(err, 40018, 40019) }

// IsSystemBusy reports whether err is -1: a Douyin system error. The
// client has already retried once.
func IsSystemBusy(err error) bool { return hasCode(err, -1) }

// IsInvalidCredentials reports whether err is 40015 (bad appid) or 40017
// (bad secret): a configuration error, not the user's fault.
func IsInvalidCredentials(err error) bool { return hasCode(err, 40015, 40017) }

// Interface guards.
var _ apicall.Coded = (*APIError)(nil)
