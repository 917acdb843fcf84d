// Package alipay is a client of Alipay's open-platform gateway for a mini
// program's login server: alipay.system.oauth.token (an auth code for the
// user's open_id or user_id) and the phone number of my.getPhoneNumber.
//
// Alipay has no app secret and no session key. Every call is signed RSA2
// (SHA256withRSA) with the app's private key; every answer is verified
// with Alipay's public key over the exact bytes of its inner object before
// anything in it is read; phone numbers are sealed with the app's content
// key (AES-128-CBC) and signed over the quoted ciphertext.
//
// It has no dependency on Caddy. Tests can point it at the fake in package
// alipaytest with WithBaseURL.
//
// # Secrets
//
// The private key and the content key never appear in an error string or
// the fmt rendering of any value of this package. The access token of
// alipay.system.oauth.token is not kept.
//
// # Errors
//
// Alipay's verified refusals are *APIError (use errors.As, or the Is*
// predicates). Everything else wraps one of ErrTimeout, ErrUnavailable,
// ErrBadResponse, ErrInvalidInput or ErrDecrypt; a sign that does not
// verify wraps ErrSignature as well.
package alipay
