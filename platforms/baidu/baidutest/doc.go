// Package baidutest is a fake of Baidu's smart-program server API for
// tests, in the spirit of net/http/httptest and of wechattest: NewServer
// starts one on a loopback address, and its URL is the API base to give a
// baidu.Client. A Fake is also an http.Handler, so a dev-mode server can
// serve the same fake.
//
// The fake behaves like Baidu, not like any particular client: login is
// a form POST, errors are OAuth error objects ({"error",
// "error_description"}) with HTTP 400, codes are single use, every login
// gives a new 24-byte session_key, and sealed data has Baidu's layout
// (AES-192-CBC, 16 random bytes, a 4-byte big-endian length, the JSON,
// the App Key; padded to a multiple of 32 bytes as Baidu does). Knobs
// make the next calls fail with an OAuth error (FailNext), answer
// something raw (RespondNext) or answer slowly (SetDelay).
//
// # Codes
//
// A code names its user: everything before the first ':' is the user
// name, so "alice" and "alice:2" are two codes of user alice. Each code
// string is single use (invalid_grant on reuse). "" is invalid_request. A
// code that starts with "bad", contains white space or a control
// character, has an empty user part or is longer than 128 bytes is
// invalid_grant.
//
// # Users
//
// OpenID is deterministic per (App Key, user): 26 characters. The default
// phone number is 150 followed by 8 digits derived from the name
// (SetPhone changes it).
//
// # Endpoints
//
// Baidu's: POST /oauth/jscode2sessionkey (form code, client_id, sk).
//
// Dev helpers, not Baidu's, for walking through a demo with curl:
// GET /_mock/ (help), GET /_mock/seal_phone?user=alice and
// POST /_mock/seal?user=alice with a JSON object body, both answering
// {"encryptedData", "iv"} sealed with the user's current session_key (409
// if the user never logged in).
package baidutest
