package qq

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
	ErrTimeout = errors.New("qq: timeout")
	// ErrUnavailable: QQ could not be reached, after the one retry.
	ErrUnavailable = errors.New("qq: unavailable")
	// ErrBadResponse: QQ answered something unusable: an unexpected HTTP
	// status, HTML, a body that is not a JSON object, or a success
	// without openid or a valid session_key.
	ErrBadResponse = errors.New("qq: unusable response")
	// ErrInvalidInput: the input is unusable before anything is sent or
	// decrypted: an empty, over-long or non-printable code, bad base64, a
	// key or IV that is not 16 bytes, a bad base URL.
	ErrInvalidInput = errors.New("qq: invalid input")
	// ErrDecrypt: open data did not decrypt to one JSON object without
	// repeated keys (bad padding and bad JSON are one error).
	ErrDecrypt = errors.New("qq: decrypt failed")
	// ErrWatermark: decrypted open data has no watermark, one for another
	// app id, or one older than WithMaxDataAge allows.
	ErrWatermark = errors.New("qq: watermark mismatch")
)

// APICode2Session names the login API in APIError.API and error strings.
const APICode2Session = "jscode2session"

// APIError is an answer from QQ carrying a non-zero errcode. Branch on
// Code (or the Is* predicates), never on Msg.
type APIError struct {
	// API is the API that answered: APICode2Session.
	API string
	// Code is QQ's errcode.
	Code int
	// Msg is QQ's errmsg, secrets and control characters removed, at
	// most 256 bytes.
	Msg string
}

// Error returns "qq: <api>: errcode <code>: <msg>".
func (e *APIError) Error() string {
	return fmt.Sprintf("qq: %s: errcode %d: %s", e.API, e.Code, e.Msg)
}

// APICode returns Code, for the classification the platform clients
// share.
func (e *APIError) APICode() int { return e.Code }

func hasCode(err error, codes ...int) bool { return apicall.HasCode(err, codes...) }

// IsInvalidCode reports whether err is QQ refusing the login code: 40029
// (documented), or WeChat's 40163 (already used) and 41008 (missing code),
// which QQ's copy of the API may answer too. The user should call
// qq.login again.
func IsInvalidCode(err error) bool { return hasCode(err, 40029, 40163, 41008) }

// IsRateLimited reports whether err is 45011: 100 calls per user per
// minute.
func IsRateLimited(err error) bool { return hasCode(err, 45011) }

// IsSystemBusy reports whether err is -1: QQ is busy. The client has
// already retried once.
func IsSystemBusy(err error) bool { return hasCode(err, -1) }

// IsInvalidCredentials reports whether err is 40013 (invalid appid) or
// 40125 (invalid secret), WeChat's codes, which QQ does not document: a
// configuration error, not the user's fault.
func IsInvalidCredentials(err error) bool { return hasCode(err, 40013, 40125) }

// Interface guards.
var _ apicall.Coded = (*APIError)(nil)
