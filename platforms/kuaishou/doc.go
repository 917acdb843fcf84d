// Package kuaishou is a client of the Kuaishou mini program server API
// that a login server needs: code2Session and the decryption of open data
// (the legacy getPhoneNumber form among them).
//
// Shapes: POST https://open.kuaishou.com/oauth2/mp/code2session with a
// form body app_id, app_secret, js_code; the answer is {result: 1,
// session_key, open_id} on success, and a result other than 1 with error
// and error_msg on failure (the SDKs platforms.md names: HeartGarlic
// kuaishou-server-api-sdk, EasySeries KuaishouSessionResponse). The result
// numbers are those Kuaishou documents for its mini program OAuth server
// (mp.kuaishou.com, develop/server/getAccessToken, "当 result 不为 1 时"):
// 100200100 a parameter is wrong or empty (here: the js_code, once app_id
// and app_secret are right) and 100200101 app_id/app_secret verification
// failed. Kuaishou documents no busy or rate-limit number, so only
// transport failures are retried.
//
// Open data is sealed as on WeChat (AES-128-CBC under the 16-byte session
// key, watermark.appid); ks.login refreshes the session key.
//
// It has no dependency on Caddy. Tests can point it at the fake in package
// kuaishoutest with WithBaseURL.
//
// # Secrets
//
// The app secret (sent in the form body) and session keys never appear in
// an error string or the fmt rendering of any value of this package.
//
// # Errors
//
// Kuaishou's own refusals are *APIError (use errors.As, or the Is*
// predicates). Everything else wraps one of ErrTimeout, ErrUnavailable,
// ErrBadResponse, ErrInvalidInput, ErrDecrypt or ErrWatermark.
package kuaishou
