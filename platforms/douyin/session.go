package douyin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Session is the answer of code2Session. SessionKey is a secret of the
// server: String, GoString and Format redact it.
type Session struct {
	// OpenID identifies the user within this app.
	OpenID string
	// UnionID identifies the user across the apps of one Douyin
	// developer; empty unless Douyin sends one.
	UnionID string
	// SessionKey is base64 of 16 bytes, the AES key of the user's open
	// data. Every login gives a new one.
	SessionKey string
	// AnonymousOpenID is the user's id from before they logged in, sent
	// only when Code2SessionWithAnonymous passed an anonymous code, for
	// moving anonymous data to the user.
	AnonymousOpenID string
}

// String describes s with its SessionKey redacted.
func (s Session) String() string {
	return fmt.Sprintf("douyin.Session{OpenID: %q, UnionID: %q, AnonymousOpenID: %q, SessionKey: [redacted]}", s.OpenID, s.UnionID, s.AnonymousOpenID)
}

// GoString is String, so that %#v redacts too.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// Code2Session exchanges a tt.login code for the user's identity and
// session key (POST /api/apps/v2/jscode2session). A system error (-1) or
// a transport failure is retried once.
//
// Errors: ErrInvalidInput for an empty, over-long or non-printable code
// (nothing sent); *APIError for Douyin's refusals (IsInvalidCode,
// IsSystemBusy, IsInvalidCredentials); ErrTimeout, ErrUnavailable,
// ErrBadResponse otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	return c.Code2SessionWithAnonymous(ctx, code, "")
}

// Code2SessionWithAnonymous is Code2Session also sending tt.login's
// anonymousCode (if not empty), so that the answer carries
// AnonymousOpenID. A login without code (anonymous only) is not served: it
// gives no session key.
func (c *Client) Code2SessionWithAnonymous(ctx context.Context, code, anonymousCode string) (*Session, error) {
	if d := apicall.CheckCode(code); d != "" {
		return nil, apicall.NewError("douyin", APICode2Session, ErrInvalidInput, d)
	}
	if anonymousCode != "" {
		if d := apicall.CheckCode(anonymousCode); d != "" {
			return nil, apicall.NewError("douyin", APICode2Session, ErrInvalidInput, "anonymous "+d)
		}
	}
	var r code2SessionResponse
	if err := c.c.Call.Do(ctx, c.code2SessionRequest(code, anonymousCode), &r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	d := r.Data
	return &Session{OpenID: d.OpenID, UnionID: d.UnionID, SessionKey: d.SessionKey, AnonymousOpenID: d.AnonymousOpenID}, nil
}

func (c *Client) code2SessionRequest(code, anonymousCode string) apicall.Request {
	return apicall.Request{
		API:    APICode2Session,
		Method: http.MethodPost,
		Path:   "/api/apps/v2/jscode2session",
		JSON: struct {
			AppID         string `json:"appid"`
			Secret        string `json:"secret"`
			Code          string `json:"code"`
			AnonymousCode string `json:"anonymous_code,omitempty"`
		}{c.c.AppID, c.c.Secret, code, anonymousCode},
		Status: c.status,
		Busy:   IsSystemBusy,
	}
}

// status reads err_no/err_tips: 0 is success. A body without err_no is
// not success: the v2 API always sends it.
func (c *Client) status(body []byte) error {
	var st struct {
		ErrNo   *int   `json:"err_no"`
		ErrTips string `json:"err_tips"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.ErrNo == nil {
		return apicall.ErrBadStatus
	}
	if *st.ErrNo != 0 {
		return &APIError{API: APICode2Session, Code: *st.ErrNo, Msg: c.c.Call.CleanMsg(st.ErrTips)}
	}
	return nil
}

type code2SessionResponse struct {
	Data *struct {
		SessionKey      string `json:"session_key"`
		OpenID          string `json:"openid"`
		AnonymousOpenID string `json:"anonymous_openid"`
		UnionID         string `json:"unionid"`
	} `json:"data"`
}

// validate refuses a success that could not be used: no data, no
// openid, or a session_key Decrypt would later refuse.
func (r *code2SessionResponse) validate() error {
	if r.Data == nil || r.Data.OpenID == "" {
		return apicall.NewError("douyin", APICode2Session, ErrBadResponse, "answer has no data.openid")
	}
	if key, err := base64.StdEncoding.DecodeString(r.Data.SessionKey); err != nil || len(key) != 16 {
		return apicall.NewError("douyin", APICode2Session, ErrBadResponse, "answer has no valid data.session_key")
	}
	return nil
}
