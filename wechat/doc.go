// Package wechat is a client of the WeChat server API that a Mini Program
// login server needs: code2Session, the access token (stable_token), phone
// numbers (getuserphonenumber, bound to the caller's openid), open-data
// decryption, rawData signatures, and the duties that need the session
// key: user-state signatures (UserStateSignature, for virtual payment),
// checkSessionKey and resetUserSessionKey.
//
// It has no dependency on Caddy and can be used by any Go program. Tests can
// point it at the fake in package wechattest with WithBaseURL.
//
// # Secrets
//
// The app secret, access tokens, session keys and user-state signatures
// (derived from a session key) never appear in an error
// string, a panic or the fmt rendering of any value of this package: *Client,
// Session and Token redact themselves, and transport errors from net/http
// (whose *url.Error carries the full request URL, secret included) are
// rewritten before they are returned.
//
// # Errors
//
// WeChat's own answers are *APIError (use errors.As, or the Is* predicates
// for the classes a gateway maps). Everything else wraps one of the
// sentinels ErrTimeout, ErrUnavailable, ErrBadResponse, ErrInvalidInput,
// ErrDecrypt or ErrWatermark, so errors.Is works on every error returned.
package wechat
