// Package qq is a client of the QQ mini program server API that a login
// server needs: code2Session and the decryption of open data (the legacy
// getPhoneNumber form among them).
//
// QQ copied WeChat's API: the same GET /sns/jscode2session with appid,
// secret, js_code and grant_type=authorization_code, on
// https://api.q.qq.com, answering {openid, session_key, unionid} or
// {errcode, errmsg}, and the same open-data scheme (AES-128-CBC under the
// 16-byte session key, watermark.appid). Source: the QQ mini program
// "code2Session" server API page (read through the w3cschool
// qqxiaochengxu mirror), which documents errcode -1 (busy), 40029
// (invalid code) and 45011 (100 calls per user per minute).
//
// It has no dependency on Caddy. Tests can point it at the fake in package
// qqtest with WithBaseURL.
//
// # Secrets
//
// The app secret and session keys never appear in an error string or the
// fmt rendering of any value of this package: *Client and Session redact
// themselves, and transport errors (whose *url.Error carries the full
// request URL, secret included: QQ wants it in the query string) are
// rewritten before they are returned.
//
// # Errors
//
// QQ's own refusals are *APIError (use errors.As, or the Is* predicates).
// Everything else wraps one of ErrTimeout, ErrUnavailable, ErrBadResponse,
// ErrInvalidInput, ErrDecrypt or ErrWatermark.
package qq
