package alipay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Session is who the user is, from alipay.system.oauth.token. Alipay has
// no session key; the field is kept, always empty, so that every
// platform's Session has one shape.
type Session struct {
	// OpenID identifies the user within this app: Alipay's open_id, or,
	// for an app not yet on Alipay's open_id scheme, its user_id (2088
	// followed by 12 digits).
	OpenID string
	// UserID is Alipay's user_id when the answer has one ("" for apps on
	// the open_id scheme, which get open_id only).
	UserID string
	// UnionID is Alipay's union_id when the answer has one.
	UnionID string
	// SessionKey is always "": Alipay has no session key, so nothing is
	// decrypted with one (phone numbers use the app's content key).
	SessionKey string
}

// String describes s. It prints no token: the Session holds none.
func (s Session) String() string {
	return fmt.Sprintf("alipay.Session{OpenID: %q, UserID: %q, UnionID: %q}", s.OpenID, s.UserID, s.UnionID)
}

// GoString is String.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// tokenResponse is what Code2Session reads of alipay.system.oauth.token's
// answer (opendocs alipay.system.oauth.token; docs.antom.com oauth_token):
// user_id and/or open_id, access_token, expires_in... Only the identity
// is kept: the access token is a credential the gateway does not need.
type tokenResponse struct {
	UserID  string `json:"user_id"`
	OpenID  string `json:"open_id"`
	UnionID string `json:"union_id"`
}

// Code2Session exchanges the auth code of my.getAuthCode({scopes:
// 'auth_base'}) for the user's identity: POST /gateway.do with
// method=alipay.system.oauth.token, grant_type=authorization_code and
// code, signed RSA2 with the app's private key. The answer is believed
// only once its sign verifies with Alipay's public key. A busy Alipay
// (20000) or a transport failure is retried once.
//
// Errors: ErrInvalidInput for an empty or over-long code or a missing key;
// *APIError for Alipay's verified refusals (IsInvalidCode: 40002
// isv.code-invalid; IsSystemBusy: 20000; IsInvalidCredentials); ErrBadResponse
// (with ErrSignature for a missing or bad sign), ErrTimeout, ErrUnavailable
// otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	if d := apicall.CheckCodeSize(code); d != "" {
		return nil, newError(APICode2Session, ErrInvalidInput, d)
	}
	obj, err := c.call(ctx, APICode2Session, APICode2Session, url.Values{
		"grant_type": {"authorization_code"},
		"code":       {code},
	})
	if err != nil {
		return nil, err
	}
	var r tokenResponse
	if err := json.Unmarshal(obj.raw, &r); err != nil {
		return nil, newError(APICode2Session, ErrBadResponse, "user_id or open_id is not a string")
	}
	s := &Session{OpenID: r.OpenID, UserID: r.UserID, UnionID: r.UnionID}
	if s.OpenID == "" {
		s.OpenID = r.UserID
	}
	if s.OpenID == "" {
		return nil, newError(APICode2Session, ErrBadResponse, "answer has neither open_id nor user_id")
	}
	return s, nil
}
