package qq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Session is the answer of code2Session. SessionKey is a secret of the
// server: String, GoString and Format redact it.
type Session struct {
	// OpenID identifies the user within this app.
	OpenID string
	// UnionID identifies the user across the apps of one QQ open
	// platform account; empty unless QQ sends one.
	UnionID string
	// SessionKey is base64 of 16 bytes, the AES key of the user's open
	// data. Every login gives a new one.
	SessionKey string
}

// String describes s with its SessionKey redacted.
func (s Session) String() string {
	return fmt.Sprintf("qq.Session{OpenID: %q, UnionID: %q, SessionKey: [redacted]}", s.OpenID, s.UnionID)
}

// GoString is String, so that %#v redacts too.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// Code2Session exchanges a qq.login code for the user's identity and
// session key (GET /sns/jscode2session). A busy QQ (-1) or a transport
// failure is retried once.
//
// Errors: ErrInvalidInput for an empty, over-long or non-printable code
// (nothing sent); *APIError for QQ's refusals (IsInvalidCode,
// IsRateLimited, IsSystemBusy, IsInvalidCredentials); ErrTimeout,
// ErrUnavailable, ErrBadResponse otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	if d := apicall.CheckCode(code); d != "" {
		return nil, apicall.NewError("qq", APICode2Session, ErrInvalidInput, d)
	}
	var r code2SessionResponse
	err := c.c.Call.Do(ctx, c.code2SessionRequest(code), &r)
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &Session{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: r.SessionKey}, nil
}

func (c *Client) code2SessionRequest(code string) apicall.Request {
	return apicall.Request{
		API:    APICode2Session,
		Method: http.MethodGet,
		Path:   "/sns/jscode2session",
		// The secret goes in the query string: that is QQ's API, and
		// why every transport error is sanitized.
		Query: url.Values{
			"appid":      {c.c.AppID},
			"secret":     {c.c.Secret},
			"js_code":    {code},
			"grant_type": {"authorization_code"},
		},
		Status: c.status,
		Busy:   IsSystemBusy,
	}
}

// status reads errcode/errmsg: a missing or zero errcode is success.
func (c *Client) status(body []byte) error {
	var st struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return apicall.ErrBadStatus
	}
	if st.ErrCode != 0 {
		return &APIError{API: APICode2Session, Code: st.ErrCode, Msg: c.c.Call.CleanMsg(st.ErrMsg)}
	}
	return nil
}

type code2SessionResponse struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
}

// validate refuses a success that could not be used: no openid, or a
// session_key Decrypt would later refuse.
func (r *code2SessionResponse) validate() error {
	if r.OpenID == "" {
		return apicall.NewError("qq", APICode2Session, ErrBadResponse, "answer has no openid")
	}
	if key, err := base64.StdEncoding.DecodeString(r.SessionKey); err != nil || len(key) != 16 {
		return apicall.NewError("qq", APICode2Session, ErrBadResponse, "answer has no valid session_key")
	}
	return nil
}
