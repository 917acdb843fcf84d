package wechat

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Session is the answer of code2Session (or of ResetUserSessionKey): who
// the user is, and the session_key that decrypts the open data the mini
// program receives.
//
// SessionKey is a secret of the server: String, GoString and Format
// redact it whatever the verb. (encoding/json does not: marshal a Session
// only into storage you trust.)
type Session struct {
	// OpenID identifies the user within this app.
	OpenID string
	// UnionID identifies the user across the apps of one WeChat Open
	// Platform account; empty unless WeChat sends one.
	UnionID string
	// SessionKey is base64 of 16 bytes, the AES key of the user's open
	// data. Every login gives a new one.
	SessionKey string
}

// String describes s with its SessionKey redacted.
func (s Session) String() string {
	return fmt.Sprintf("wechat.Session{OpenID: %q, UnionID: %q, SessionKey: [redacted]}", s.OpenID, s.UnionID)
}

// GoString is String, so that %#v redacts too.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// Code2Session exchanges a wx.login code for the user's identity and
// session_key (GET /sns/jscode2session). A busy WeChat (-1) or a transport
// failure is retried once.
//
// Errors: ErrInvalidInput for an empty or over-long code; *APIError for
// WeChat's refusals (IsInvalidCode: 40029, 40163, 41008; IsUserBlocked:
// 40226; IsRateLimited: 45011; IsInvalidCredentials: 40013, 40125);
// ErrTimeout, ErrUnavailable, ErrBadResponse otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	if code == "" {
		return nil, newError(APICode2Session, ErrInvalidInput, "empty code")
	}
	if len(code) > maxCode {
		return nil, newError(APICode2Session, ErrInvalidInput, "code longer than 1024 bytes")
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var r code2SessionResponse
	err := c.do(ctx, request{
		api:    APICode2Session,
		method: http.MethodGet,
		path:   "/sns/jscode2session",
		// The secret has to go in the query string: that is
		// WeChat's API. It is why every transport error is
		// sanitized (errors.go).
		query: url.Values{
			"appid":      {c.appID},
			"secret":     {c.secret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		},
		redact: c.redactor(),
	}, &r)
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &Session{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: r.SessionKey}, nil
}

type code2SessionResponse struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
}

// validate rejects a "success" that could not be used: a missing openid,
// or a session_key that Decrypt would later refuse (better to fail the
// login with a clear 502 than every decryption with a misleading 400).
func (r *code2SessionResponse) validate() error {
	if r.OpenID == "" {
		return newError(APICode2Session, ErrBadResponse, "answer has no openid")
	}
	if !validSessionKey(r.SessionKey) {
		return newError(APICode2Session, ErrBadResponse, "answer has no valid session_key")
	}
	return nil
}
