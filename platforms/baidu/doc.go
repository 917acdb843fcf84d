// Package baidu is a client of Baidu's smart-program server API that a
// login server needs: jscode2sessionkey (a login code for the user's
// openid and session key) and the decryption of sealed open data
// (AES-192-CBC under the 24-byte session key, stamped with the App Key).
//
// It has no dependency on Caddy. Tests can point it at the fake in
// package baidutest with WithBaseURL.
//
// # Secrets
//
// The App Secret and session keys never appear in an error string or the
// fmt rendering of any value of this package: Client and Session redact
// themselves, and transport errors from net/http are rewritten before
// they are returned. The App Secret travels in the POST body, never in a
// URL.
//
// # Errors
//
// Baidu's own refusals are *APIError (use errors.As, or IsInvalidCode and
// IsInvalidCredentials). Everything else wraps one of the sentinels
// ErrTimeout, ErrUnavailable, ErrBadResponse, ErrInvalidInput, ErrDecrypt
// or ErrWatermark.
package baidu
