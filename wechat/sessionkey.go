package wechat

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
)

// maxOpenID caps an openid sent to WeChat. Real ones are 28 characters;
// the cap keeps absurd input off the wire.
const maxOpenID = 128

// sigMethod is the only user-state signature method WeChat supports.
const sigMethod = "hmac_sha256"

// CheckSessionKey asks WeChat whether sessionKey is still the key it holds
// for the user openid (GET /wxa/checksession, WeChat's checkSessionKey).
// The key itself is never sent: the call carries its user-state signature
// of "" (UserStateSignature(sessionKey, "")), sig_method=hmac_sha256.
//
// WeChat keeps one valid key per user at a time and can replace it
// without a login the server sees (data pre-fetch, 数据预拉取), so a key
// the server stored may be dead; anything signed with it (a virtual
// payment) then fails.
//
// valid is true for errcode 0, and false with a nil error for 87009
// (invalid signature: the key is not the one WeChat holds). If WeChat
// rejects the access token (40001, 40014, 42001), the token is refreshed
// once and the call retried once, as for PhoneNumber. Other errors:
// ErrInvalidInput for an empty or over-long openid or a session key that
// is not base64 of 16 bytes (nothing is sent); *APIError for WeChat's
// other answers (e.g. 87008 invalid sig_method, 45011, 40003 invalid
// openid); ErrTimeout, ErrUnavailable, ErrBadResponse otherwise.
func (c *Client) CheckSessionKey(ctx context.Context, openid, sessionKey string) (valid bool, err error) {
	if err := checkUserState(APICheckSession, openid, sessionKey); err != nil {
		return false, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var out struct{}
	err = c.withToken(ctx, func(token string) error {
		return c.do(ctx, c.userStateRequest(APICheckSession, "/wxa/checksession", token, openid, sessionKey), &out)
	})
	switch {
	case err == nil:
		return true, nil
	case IsInvalidSignature(err):
		return false, nil
	}
	return false, err
}

// ResetUserSessionKey makes WeChat replace the user's session key, for a
// key believed leaked (GET /wxa/resetusersessionkey, WeChat's
// ResetUserSessionKey), and returns the new one: a Session with OpenID
// and SessionKey (UnionID is always empty: this answer has none). The
// call is authenticated, like CheckSessionKey, by the user-state
// signature of "" under the current key, which it invalidates.
//
// The new key keeps the old key's expiry: a reset does not extend the
// session WeChat keeps for the user. WeChat refuses frequent resets of
// one user.
//
// Errors: as for CheckSessionKey, except that 87009 (sessionKey is not
// the key WeChat holds) is an *APIError (IsInvalidSignature), and an
// answer without a usable session_key, or for another openid, is
// ErrBadResponse.
func (c *Client) ResetUserSessionKey(ctx context.Context, openid, sessionKey string) (*Session, error) {
	if err := checkUserState(APIResetSessionKey, openid, sessionKey); err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var r struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}
	err := c.withToken(ctx, func(token string) error {
		return c.do(ctx, c.userStateRequest(APIResetSessionKey, "/wxa/resetusersessionkey", token, openid, sessionKey), &r)
	})
	if err != nil {
		return nil, err
	}
	if r.OpenID != openid {
		return nil, newError(APIResetSessionKey, ErrBadResponse, "answer is for another openid")
	}
	if !validSessionKey(r.SessionKey) {
		return nil, newError(APIResetSessionKey, ErrBadResponse, "answer has no valid session_key")
	}
	return &Session{OpenID: r.OpenID, SessionKey: r.SessionKey}, nil
}

// userStateRequest is a GET signed with the user-state signature of "".
// Every parameter goes in the query string, as in WeChat's request
// examples for both APIs (their tables call openid, signature and
// sig_method "Request Payload", but a GET has none). The signature is redacted from errors like the token: it is derived
// from the key, and replaying it checks or resets the user's key.
func (c *Client) userStateRequest(api, path, token, openid, sessionKey string) request {
	sig := UserStateSignature(sessionKey, "")
	return request{
		api:    api,
		method: http.MethodGet,
		path:   path,
		query: url.Values{
			"access_token": {token},
			"openid":       {openid},
			"signature":    {sig},
			"sig_method":   {sigMethod},
		},
		redact: c.redactor(token, sig, sessionKey),
	}
}

// checkUserState rejects, before anything is sent, input WeChat could
// only refuse.
func checkUserState(api, openid, sessionKey string) error {
	if err := checkOpenID(api, openid); err != nil {
		return err
	}
	if !validSessionKey(sessionKey) {
		return newError(api, ErrInvalidInput, "session key is not base64 of 16 bytes")
	}
	return nil
}

func checkOpenID(api, openid string) error {
	switch {
	case openid == "":
		return newError(api, ErrInvalidInput, "empty openid")
	case len(openid) > maxOpenID:
		return newError(api, ErrInvalidInput, "openid longer than 128 bytes")
	}
	return nil
}

// validSessionKey: a session_key is base64 (std) of 16 bytes.
func validSessionKey(k string) bool {
	b, err := base64.StdEncoding.DecodeString(k)
	return err == nil && len(b) == 16
}
