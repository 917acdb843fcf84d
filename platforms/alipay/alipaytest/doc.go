// Package alipaytest is a fake of Alipay's open-platform gateway for
// tests, in the spirit of net/http/httptest and of wechattest: NewServer
// starts one on a loopback address, and its URL is the base to give an
// alipay.Client. A Fake is also an http.Handler, so a dev-mode server can
// serve the same fake.
//
// The fake behaves like Alipay, not like any particular client. It holds
// its own "Alipay" RSA key pair (made at New, or given with
// WithAlipayKey; AlipayPublicKeyPEM is what a client verifies with) and
// the app's public key, with which it checks the RSA2 sign of every
// request and refuses a bad one as Alipay does (40002
// isv.invalid-signature). Its answers are signed over the exact text of
// their inner object, and that text is written with spacing, key order and
// \u escapes that a re-encoding would change: a client that re-encodes
// before verifying fails. Codes are single use. Knobs make the next calls
// fail with a signed error_response (FailNext), answer something raw
// (RespondNext) or answer slowly (SetDelay).
//
// # Codes
//
// A code names its user: everything before the first ':' is the user
// name, so "alice" and "alice:2" are two codes of user alice. Each code
// string is single use. An empty code, one that starts with "bad",
// contains white space or a control character, has an empty user part or
// is longer than 128 bytes, and a used one, are all 40002
// isv.code-invalid, as Alipay answers them.
//
// # Users
//
// By default the app is on Alipay's open_id scheme: answers carry open_id
// (deterministic per app id and user), no user_id. SetOpenIDScheme(false)
// makes them carry user_id only (2088 followed by 12 digits, per user).
// The default phone number is 139 followed by 8 digits derived from the
// name (SetPhone changes it).
//
// # Endpoints
//
// Alipay's: POST /gateway.do, method alipay.system.oauth.token.
//
// Dev helpers, not Alipay's, for walking through a demo with curl:
// GET /_mock/ (help), GET /_mock/seal_phone?user=alice (what
// my.getPhoneNumber gives the mini program: {"response", "sign",
// "sign_type", "encrypt_type", "charset"}), GET /_mock/alipay_public_key
// (the fake's public key, PEM).
package alipaytest
