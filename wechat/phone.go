package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// PhoneInfo is a user's phone number, from PhoneNumber (the
// getuserphonenumber API) or DecryptPhone (the legacy encrypted form).
type PhoneInfo struct {
	// PhoneNumber is the number as the user sees it; with a country code
	// for numbers outside mainland China.
	PhoneNumber string `json:"phoneNumber"`
	// PurePhoneNumber is the number without country code.
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is the country calling code without "+", e.g. "86".
	// WeChat sends it as a JSON number (getuserphonenumber) or string
	// (legacy encrypted data); UnmarshalJSON accepts both, and it is
	// always a string here and when marshalled.
	CountryCode string `json:"countryCode"`
	// Watermark is the app id and time WeChat stamped on the data.
	Watermark *Watermark `json:"watermark,omitempty"`
}

// Watermark is the stamp WeChat puts in open data: the app it was issued
// for, and when (Unix seconds).
type Watermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}

// UnmarshalJSON decodes a PhoneInfo whose countryCode is a JSON number
// (86), a string ("86") or null/absent ("").
func (p *PhoneInfo) UnmarshalJSON(b []byte) error {
	type plain PhoneInfo // no methods: no recursion
	var aux struct {
		plain
		// Shallower than plain.CountryCode, so it takes the key.
		CountryCode countryCode `json:"countryCode"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*p = PhoneInfo(aux.plain)
	p.CountryCode = string(aux.CountryCode)
	return nil
}

// String shows the number masked (138****1111), as logs must.
func (p PhoneInfo) String() string {
	s := MaskPhone(p.PurePhoneNumber)
	if p.CountryCode != "" {
		s = "+" + p.CountryCode + " " + s
	}
	return s
}

// MaskPhone masks a phone number for logs: the first 3 and last 4 digits
// stay (13800001111 -> 138****1111); a number too short for that is masked
// entirely.
func MaskPhone(n string) string {
	if len(n) < 8 {
		return strings.Repeat("*", len(n))
	}
	return n[:3] + strings.Repeat("*", len(n)-7) + n[len(n)-4:]
}

// countryCode accepts a JSON string, a non-negative JSON integer, or null.
type countryCode string

func (cc *countryCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*cc = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*cc = countryCode(s)
		return nil
	}
	if len(b) == 0 || len(b) > 8 {
		return errors.New("wechat: countryCode is not a string or a small integer")
	}
	for _, d := range b {
		if d < '0' || d > '9' {
			return errors.New("wechat: countryCode is not a string or a small integer")
		}
	}
	*cc = countryCode(b)
	return nil
}

// PhoneNumber exchanges a getPhoneNumber code (the new form, from the
// button's bindgetphonenumber event) of the user openid for that user's
// phone number: POST /wxa/business/getuserphonenumber with the access
// token and {"code", "openid"}.
//
// The openid is required: with it WeChat checks that the code was made
// for that user ("填入后会校验openid和code的绑定关系"), so a code that
// another user obtained and someone posts as theirs is refused. WeChat's
// documentation names no errcode for that refusal; IsCodeNotForUser
// reports 40003 (WeChat's "invalid openid"), the one the fake in
// wechattest answers, and a refusal WeChat words as 40029 is
// IsInvalidCode.
//
// The answer's phone_info.watermark.appid must be this client's app id;
// otherwise (no watermark, or another app's) the error wraps
// ErrWatermark and no number is returned.
//
// If WeChat rejects the access token (40001, 40014, 42001), the token is
// refreshed once and the call retried once. Errors: ErrInvalidInput for
// an empty or over-long code or openid; otherwise as for Code2Session,
// plus those of fetching the token.
func (c *Client) PhoneNumber(ctx context.Context, code, openid string) (*PhoneInfo, error) {
	switch {
	case code == "":
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "empty code")
	case len(code) > maxCode:
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "code longer than 1024 bytes")
	}
	if err := checkOpenID(APIPhoneNumber, openid); err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var info *PhoneInfo
	err := c.withToken(ctx, func(token string) (err error) {
		info, err = c.phoneNumber(ctx, token, code, openid)
		return err
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

type phoneNumberResponse struct {
	PhoneInfo *PhoneInfo `json:"phone_info"`
}

func (c *Client) phoneNumber(ctx context.Context, token, code, openid string) (*PhoneInfo, error) {
	body, err := json.Marshal(struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}{code, openid})
	if err != nil {
		return nil, newError(APIPhoneNumber, ErrInvalidInput, "cannot encode request")
	}
	var r phoneNumberResponse
	err = c.do(ctx, request{
		api:    APIPhoneNumber,
		method: http.MethodPost,
		path:   "/wxa/business/getuserphonenumber",
		query:  url.Values{"access_token": {token}},
		body:   body,
		redact: c.redactor(token),
	}, &r)
	if err != nil {
		return nil, err
	}
	p := r.PhoneInfo
	switch {
	case p == nil || p.PurePhoneNumber == "" && p.PhoneNumber == "":
		return nil, newError(APIPhoneNumber, ErrBadResponse, "answer has no phone_info")
	case p.Watermark == nil || p.Watermark.AppID == "":
		return nil, newError(APIPhoneNumber, ErrWatermark, "phone_info has no watermark appid")
	case p.Watermark.AppID != c.appID:
		return nil, newError(APIPhoneNumber, ErrWatermark, "phone_info is watermarked for another app id")
	}
	return p, nil
}
