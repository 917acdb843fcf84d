package baidu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// SessionKeySize is the size of a Baidu session key: 24 bytes, an
// AES-192 key ("AESKey 是 24 字节", Baidu's 用户数据的签名验证和加解密).
const SessionKeySize = 24

// Session is the answer of jscode2sessionkey: who the user is, and the
// session_key that decrypts the open data the smart program receives.
//
// SessionKey is a secret of the server: String, GoString and Format
// redact it whatever the verb. (encoding/json does not.)
type Session struct {
	// OpenID identifies the user within this app.
	OpenID string
	// UnionID is always empty: jscode2sessionkey has none (Baidu's
	// unionid is a separate API). The field keeps the shape of every
	// platform's Session.
	UnionID string
	// SessionKey is base64 of 24 bytes, the AES-192 key of the user's
	// open data.
	SessionKey string
}

// String describes s with its SessionKey redacted.
func (s Session) String() string {
	return fmt.Sprintf("baidu.Session{OpenID: %q, UnionID: %q, SessionKey: [redacted]}", s.OpenID, s.UnionID)
}

// GoString is String, so that %#v redacts too.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// code2SessionResponse is both shapes of Baidu's answer (swan-docs
// "Session Key", develop/api/open/log_Session-Key): {openid, session_key}
// on success, {error, error_description} otherwise.
type code2SessionResponse struct {
	OpenID           string `json:"openid"`
	SessionKey       string `json:"session_key"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// Code2Session exchanges a swan.getLoginCode / swan.login code for the
// user's identity and session_key: POST /oauth/jscode2sessionkey, form
// code, client_id (the App Key) and sk (the App Secret). The secret goes
// in the body, never in a URL. A transport failure is retried once.
//
// Errors: ErrInvalidInput for an empty or over-long code; *APIError for
// Baidu's refusals (IsInvalidCode: invalid_grant; IsInvalidCredentials:
// invalid_client, unauthorized_client); ErrTimeout, ErrUnavailable,
// ErrBadResponse otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	if d := apicall.CheckCodeSize(code); d != "" {
		return nil, newError(APICode2Session, ErrInvalidInput, d)
	}
	var s *Session
	err := c.c.Call.Do(ctx, apicall.Request{
		API:    APICode2Session,
		Method: http.MethodPost,
		Path:   "/oauth/jscode2sessionkey",
		Form: url.Values{
			"code":      {code},
			"client_id": {c.c.AppID},
			"sk":        {c.c.Secret},
		},
		// Baidu's own reading of an answer (an error object comes at any
		// HTTP status), made in the attempt so that the observer counts
		// an error answer as the error it is.
		Decode: func(status int, _ string, body []byte) error {
			var err error
			s, err = c.decodeSession(status, body)
			return err
		},
	}, nil)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// decodeSession turns one answer into a Session or an error. Baidu's
// OAuth server answers errors with HTTP 400/401 and a JSON error object,
// so an error object is believed at any status; a success only at 200.
func (c *Client) decodeSession(status int, data []byte) (*Session, error) {
	if p := jsonObjectProblem(status, data); p != "" {
		return nil, newError(APICode2Session, ErrBadResponse, p)
	}
	var r code2SessionResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, newError(APICode2Session, ErrBadResponse, apicall.JSONProblem(err, len(data)))
	}
	if r.Error != "" {
		return nil, &APIError{API: APICode2Session, Code: c.c.Call.CleanMsg(r.Error), Msg: c.c.Call.CleanMsg(r.ErrorDescription), Status: status}
	}
	if status != http.StatusOK {
		return nil, newError(APICode2Session, ErrBadResponse, fmt.Sprintf("unexpected HTTP status %d", status))
	}
	if r.OpenID == "" {
		return nil, newError(APICode2Session, ErrBadResponse, "answer has no openid")
	}
	// Checked now: better a clear 502 at login than a misleading 400 at
	// every decryption.
	if key, err := opendata.DecodeBase64(r.SessionKey); err != nil || len(key) != SessionKeySize {
		return nil, newError(APICode2Session, ErrBadResponse, "answer has no valid session_key (base64 of 24 bytes)")
	}
	return &Session{OpenID: r.OpenID, SessionKey: r.SessionKey}, nil
}
