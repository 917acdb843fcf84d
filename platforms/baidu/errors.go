package baidu

import (
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Sentinel errors. Every error returned by this package that is not an
// *APIError wraps exactly one of them, so callers can branch with errors.Is.
var (
	// ErrTimeout: the call did not complete before its deadline (the
	// client's timeout, see WithTimeout, or an earlier deadline of the
	// caller's context).
	ErrTimeout = errors.New("baidu: timeout")

	// ErrUnavailable: Baidu could not be reached (connection refused,
	// DNS failure, connection reset), after the one retry.
	ErrUnavailable = errors.New("baidu: unavailable")

	// ErrBadResponse: Baidu answered something unusable: an unexpected
	// HTTP status without an error object, HTML, a body that is not a
	// JSON object, truncated JSON, or a success answer without an openid
	// or a 24-byte session_key.
	ErrBadResponse = errors.New("baidu: unusable response")

	// ErrInvalidInput: the caller's input is unusable before anything is
	// sent or decrypted: an empty code, bad base64, a session key that is
	// not 24 bytes, an IV that is not 16 bytes, a ciphertext that is not a
	// non-zero multiple of 16 bytes.
	ErrInvalidInput = errors.New("baidu: invalid input")

	// ErrDecrypt: open data did not decrypt: bad padding, a length field
	// that overruns the plaintext, or user data that is not one JSON
	// object (typically: sealed with an older session_key). One error with
	// one message for all of them, see decrypt.go.
	ErrDecrypt = errors.New("baidu: decrypt failed")

	// ErrWatermark: decrypted open data ends with another app's App Key
	// (Baidu's watermark), or with none.
	ErrWatermark = errors.New("baidu: watermark mismatch")
)

// APICode2Session names Baidu's login API in APIError.API and error
// strings.
const APICode2Session = "jscode2sessionkey"

// APIError is an answer from Baidu carrying an OAuth error:
// {"error": "...", "error_description": "..."}.
//
// Branch on Code (or use the Is* predicates), never on Msg.
type APIError struct {
	// API is the Baidu API that answered, APICode2Session.
	API string
	// Code is Baidu's error, e.g. "invalid_grant".
	Code string
	// Msg is Baidu's error_description, with any secret the client knows
	// of removed, and shortened to at most 256 bytes.
	Msg string
	// Status is the HTTP status of the answer (Baidu's OAuth server
	// answers errors with 400 or 401).
	Status int
}

// Error returns "baidu: <api>: <code>: <msg>". It never contains a URL or
// the App Secret.
func (e *APIError) Error() string {
	return fmt.Sprintf("baidu: %s: %s: %s", e.API, e.Code, e.Msg)
}

func hasCode(err error, codes ...string) bool {
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

// IsInvalidCode reports whether err is Baidu refusing the login code:
// "invalid_grant", which Baidu's OAuth error list gives for an
// authorization code that is invalid, expired or already used (a code
// works once). The user should log in again.
func IsInvalidCode(err error) bool { return hasCode(err, "invalid_grant") }

// IsInvalidCredentials reports whether err is "invalid_client" (unknown
// client_id, or a wrong App Secret) or "unauthorized_client": a
// configuration error, not the user's fault.
func IsInvalidCredentials(err error) bool {
	return hasCode(err, "invalid_client", "unauthorized_client")
}

// newError builds an error of kind for api (none: ""), whose text is the
// sentinel's with api inserted and ": " + detail appended.
func newError(api string, kind error, detail string) error {
	return apicall.NewError("baidu", api, kind, detail)
}

// Interface guards.
var _ error = (*APIError)(nil)
