package alipay

import (
	"errors"
	"fmt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Sentinel errors. Every error of a Client's methods that is not an
// *APIError wraps one of the first five; a sign that does not verify
// wraps ErrSignature too (Verify's own errors wrap ErrSignature only). The
// key parsers' errors are plain configuration messages.
var (
	// ErrTimeout: the call did not complete before its deadline (the
	// client's timeout, see WithTimeout, or an earlier deadline of the
	// caller's context).
	ErrTimeout = errors.New("alipay: timeout")

	// ErrUnavailable: Alipay could not be reached (connection refused,
	// DNS failure, connection reset), after the one retry.
	ErrUnavailable = errors.New("alipay: unavailable")

	// ErrBadResponse: Alipay answered something unusable or
	// unbelievable: an unexpected HTTP status, a body that is not one
	// JSON object, an answer without the expected object, an answer
	// whose sign is missing or does not verify (then ErrSignature too),
	// a success without user_id or open_id.
	ErrBadResponse = errors.New("alipay: unusable response")

	// ErrInvalidInput: the input or the configuration is unusable before
	// anything is sent or verified: an empty code, no or a bad key, no
	// content key, a phone payload that is not encrypted or has no sign.
	ErrInvalidInput = errors.New("alipay: invalid input")

	// ErrDecrypt: a phone payload did not decrypt: its sign does not
	// verify (then ErrSignature too), bad base64 or padding, or a
	// plaintext that is not one JSON object with a mobile.
	ErrDecrypt = errors.New("alipay: decrypt failed")

	// ErrSignature: an RSA2 sign did not verify with Alipay's public key.
	// It comes with ErrBadResponse (an answer of the gateway: Alipay's
	// side, or someone in between) or with ErrDecrypt (a phone payload:
	// the caller's side), so a gateway maps the error by its other
	// sentinel as usual and can still count forgeries apart. Alipay's
	// answers carry no watermark: this sign is what proves them, so the
	// package has no ErrWatermark.
	ErrSignature = errors.New("alipay: sign does not verify")
)

// Names of the Alipay APIs, as used in APIError.API and in error strings.
const (
	APICode2Session = "alipay.system.oauth.token"
	APIPhoneNumber  = "my.getPhoneNumber"
)

// APIError is an answer of Alipay, verified with its public key, that
// carries an error: an error_response, or a code other than "10000".
//
// Branch on Code and SubCode (or use the Is* predicates), never on the
// messages.
type APIError struct {
	// API is the Alipay API that answered, e.g. APICode2Session.
	API string
	// Code is Alipay's public error code, e.g. "40002" (invalid
	// arguments), "20000" (service unavailable), "40004" (business
	// failure).
	Code string
	// Msg is Alipay's msg, cleaned and at most 256 bytes.
	Msg string
	// SubCode is Alipay's sub_code (subCode in a phone payload), e.g.
	// "isv.code-invalid".
	SubCode string
	// SubMsg is Alipay's sub_msg, cleaned and at most 256 bytes.
	SubMsg string
}

// Error returns "alipay: <api>: code <code> <sub_code>: <msg>: <sub_msg>".
func (e *APIError) Error() string {
	return fmt.Sprintf("alipay: %s: code %s %s: %s: %s", e.API, e.Code, e.SubCode, e.Msg, e.SubMsg)
}

func apiError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// IsInvalidCode reports whether err is Alipay refusing the auth code:
// 40002 isv.code-invalid, which Alipay answers for a code that is wrong,
// already used (a code works once), expired (after at most 24 hours) or
// issued to another app (Alipay support, opendocs support/01rg6z). The
// user should get a new code.
func IsInvalidCode(err error) bool {
	ae := apiError(err)
	return ae != nil && ae.SubCode == "isv.code-invalid"
}

// IsSystemBusy reports whether err is 20000 (service unavailable,
// isp.unknow-error or aop.unknow-error, "稍后重试" in the gateway's
// 公共错误码 table). The client has already retried once.
func IsSystemBusy(err error) bool {
	ae := apiError(err)
	return ae != nil && ae.Code == "20000"
}

// IsInvalidCredentials reports whether err is a configuration error, not
// the user's fault: an app id Alipay does not know (isv.invalid-app-id),
// a sign it does not accept (isv.invalid-signature: the app private key
// is not the one whose public key was uploaded), a signature type or
// key it lacks (isv.invalid-signature-type, isv.missing-signature-key,
// isv.missing-signature-config), or an app without the right to call
// the API (40006, insufficient permissions).
func IsInvalidCredentials(err error) bool {
	ae := apiError(err)
	if ae == nil {
		return false
	}
	switch ae.SubCode {
	case "isv.invalid-app-id", "isv.invalid-signature", "isv.invalid-signature-type",
		"isv.missing-signature-key", "isv.missing-signature-config":
		return true
	}
	return ae.Code == "40006"
}

// newError builds an error of kind (and extra sentinels) for api.
func newError(api string, kind error, detail string, extra ...error) error {
	return apicall.NewError("alipay", api, kind, detail, extra...)
}

// Interface guards.
var _ error = (*APIError)(nil)
