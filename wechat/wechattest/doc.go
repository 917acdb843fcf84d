// Package wechattest is a fake of the WeChat server API for tests, in the
// spirit of net/http/httptest: NewServer starts one on a loopback address,
// and its URL is the API base to give a client. A Fake is also an
// http.Handler, so a dev-mode server can serve the same fake.
//
// The fake behaves like WeChat, not like any particular client: it
// answers jscode2session as text/plain, codes are single use, every login
// gives a new session_key, access tokens expire and can be revoked, and
// getuserphonenumber sends countryCode as a number. Knobs make the next
// calls fail with an errcode (FailNext), answer something raw such as HTML
// (RespondNext) or answer slowly (SetDelay); Calls counts the requests of
// each API.
//
// # Codes
//
// A code names its user: everything before the first ':' is the user
// name, so "alice" and "alice:2" are two codes of user alice. Each code
// string is single use (40163 on reuse; login codes and phone codes are
// separate namespaces). "" is 41008. A code that starts with "bad",
// contains white space or a control character, has an empty user part
// (":x") or is longer than 128 bytes is 40029. See UserOfCode.
//
// # Users
//
// OpenID is deterministic per (app id, user): 28 characters, starting with
// "o". A user has a unionid only after SetUnionID. The default phone number
// is a deterministic mainland number, 138 followed by 8 digits, country
// code 86 (SetPhone changes it).
//
// # Session keys
//
// Every login gives the user a new session_key, and only the latest is
// valid, as on WeChat. RotateSessionKey replaces it behind the server's
// back, as WeChat's data pre-fetch does. checksession and
// resetusersessionkey validate like WeChat: the access token, the openid
// (40003 if no user of the app with that openid has a key), sig_method
// (87008 unless hmac_sha256) and the signature, which must be the hex
// HMAC-SHA256 of "" keyed with the base64 text of the user's current key
// (87009 otherwise).
//
// # Phone codes
//
// A phone code is bound to the user it names: getuserphonenumber with an
// "openid" that is not that user's answers 40003 (after the checks of
// Codes: a used code is still 40163) and does not use up the code (WeChat documents the check, not its errcode); without an openid
// any code is exchanged. phone_info's watermark carries the app id
// (SetPhoneWatermarkAppID stamps another).
//
// # Endpoints
//
// WeChat's: GET /sns/jscode2session, POST /cgi-bin/stable_token,
// POST /wxa/business/getuserphonenumber?access_token= {"code", "openid"},
// GET /wxa/checksession?access_token=&openid=&signature=&sig_method=,
// GET /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=
// (answering {"openid", "session_key"}).
//
// Dev helpers, not WeChat's, for walking through a demo with curl:
// GET /_mock/ (help), GET /_mock/seal_phone?user=alice and
// POST /_mock/seal?user=alice with a JSON object body, both answering
// {"encryptedData", "iv"} sealed with the user's current session_key (409
// if the user never logged in).
package wechattest
