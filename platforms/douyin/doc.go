// Package douyin is a client of the Douyin (ByteDance, formerly Toutiao)
// mini app server API that a login server needs: code2Session and the
// decryption of open data (the legacy getPhoneNumber form among them).
//
// Shapes, from Douyin's own "code2Session" page
// (developer.open-douyin.com, mini-app/develop/server/log-in/code-2-session):
// POST https://developer.toutiao.com/api/apps/v2/jscode2session with a
// JSON body {appid, secret, code, anonymous_code}; the answer is
// {err_no, err_tips, log_id, data: {session_key, openid,
// anonymous_openid, unionid}}, err_no 0 for success. The error numbers
// are those of the legacy jscode2session page (w3cschool microapp mirror,
// and the forum's "errcode 40018 bad code"): -1 system error, 40015 bad
// appid, 40017 bad secret, 40018 bad code, 40019 bad anonymous_code.
// Douyin documents no rate-limit number for this API.
//
// Open data is sealed as on WeChat (AES-128-CBC under the 16-byte
// session key, watermark.appid); "session_key 会随着login接口的调用被刷新":
// every tt.login gives a new key.
//
// It has no dependency on Caddy. Tests can point it at the fake in package
// douyintest with WithBaseURL.
//
// # Secrets
//
// The app secret (sent in the JSON body) and session keys never appear in
// an error string or the fmt rendering of any value of this package.
//
// # Errors
//
// Douyin's own refusals are *APIError (use errors.As, or the Is*
// predicates). Everything else wraps one of ErrTimeout, ErrUnavailable,
// ErrBadResponse, ErrInvalidInput, ErrDecrypt or ErrWatermark.
package douyin
