package kuaishou

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
	// UnionID identifies the user across one developer's apps; empty
	// unless Kuaishou sends union_id.
	UnionID string
	// SessionKey is base64 of 16 bytes, the AES key of the user's open
	// data. Every login gives a new one.
	SessionKey string
}

// String describes s with its SessionKey redacted.
func (s Session) String() string {
	return fmt.Sprintf("kuaishou.Session{OpenID: %q, UnionID: %q, SessionKey: [redacted]}", s.OpenID, s.UnionID)
}

// GoString is String, so that %#v redacts too.
func (s Session) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// Code2Session exchanges a ks.login code for the user's identity and
// session key (POST /oauth2/mp/code2session, form-encoded). A transport
// failure is retried once; Kuaishou documents no busy answer.
//
// Errors: ErrInvalidInput for an empty, over-long or non-printable code
// (nothing sent); *APIError for Kuaishou's refusals (IsInvalidCode,
// IsInvalidCredentials); ErrTimeout, ErrUnavailable, ErrBadResponse
// otherwise.
func (c *Client) Code2Session(ctx context.Context, code string) (*Session, error) {
	if d := apicall.CheckCode(code); d != "" {
		return nil, apicall.NewError("kuaishou", APICode2Session, ErrInvalidInput, d)
	}
	var r code2SessionResponse
	if err := c.c.Call.Do(ctx, c.code2SessionRequest(code), &r); err != nil {
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
		Method: http.MethodPost,
		Path:   "/oauth2/mp/code2session",
		Form:   url.Values{"app_id": {c.c.AppID}, "app_secret": {c.c.Secret}, "js_code": {code}},
		Status: c.status,
	}
}

// status reads result/error/error_msg: result 1 is success, a missing
// result is not.
func (c *Client) status(body []byte) error {
	var st struct {
		Result   *int   `json:"result"`
		Error    string `json:"error"`
		ErrorMsg string `json:"error_msg"`
	}
	if err := json.Unmarshal(body, &st); err != nil || st.Result == nil {
		return apicall.ErrBadStatus
	}
	if *st.Result != 1 {
		return &APIError{API: APICode2Session, Code: *st.Result, ErrorName: apicall.Clip(c.c.Call.CleanMsg(st.Error), 64), Msg: c.c.Call.CleanMsg(st.ErrorMsg)}
	}
	return nil
}

type code2SessionResponse struct {
	OpenID     string `json:"open_id"`
	UnionID    string `json:"union_id"`
	SessionKey string `json:"session_key"`
}

// validate refuses a success that could not be used: no open_id, or a
// session_key Decrypt would later refuse.
func (r *code2SessionResponse) validate() error {
	if r.OpenID == "" {
		return apicall.NewError("kuaishou", APICode2Session, ErrBadResponse, "answer has no open_id")
	}
	if key, err := base64.StdEncoding.DecodeString(r.SessionKey); err != nil || len(key) != 16 {
		return apicall.NewError("kuaishou", APICode2Session, ErrBadResponse, "answer has no valid session_key")
	}
	return nil
}
