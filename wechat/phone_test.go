package wechat_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestPhoneNumber(t *testing.T) {
	srv, c := newPair(t)
	p := phone(t, c, "alice")
	if len(p.PurePhoneNumber) != 11 || p.PurePhoneNumber[:3] != "138" || p.PhoneNumber != p.PurePhoneNumber {
		t.Errorf("default number %+v", p)
	}
	if p.CountryCode != "86" {
		t.Errorf("countryCode = %q, want 86 (sent as a number)", p.CountryCode)
	}
	if p.Watermark == nil || p.Watermark.AppID != appID || p.Watermark.Timestamp == 0 {
		t.Errorf("watermark = %+v", p.Watermark)
	}

	srv.SetCountryCodeAsString(true)
	srv.SetPhone("bob", "4155550100", "1")
	p = phone(t, c, "bob")
	if p.CountryCode != "1" || p.PurePhoneNumber != "4155550100" {
		t.Errorf("countryCode as string: %+v", p)
	}

	// Login codes and phone codes are separate: a login does not use up
	// the phone code "carol", and the other way round.
	login(t, c, "carol")
	phone(t, c, "carol")
	if _, err := c.PhoneNumber(ctx(t), "carol", openidOf("carol")); apiCode(err) != 40163 {
		t.Errorf("reused phone code: err = %v", err)
	}
}

func TestPhoneNumberErrors(t *testing.T) {
	srv, c := newPair(t, wechat.WithTimeout(200*time.Millisecond))
	for _, tt := range []struct {
		name  string
		code  string
		setup func()
		check func(error) bool
	}{
		{"empty code", "", nil, isErr(wechat.ErrInvalidInput)},
		{"invalid code", "bad", nil, wechat.IsInvalidCode},
		{"rate limited", "x", func() { srv.FailNext(wechattest.APIPhoneNumber, 45011, 1) }, wechat.IsRateLimited},
		{"busy twice", "x", func() { srv.FailNext(wechattest.APIPhoneNumber, -1, 2) }, wechat.IsSystemBusy},
		{"HTML", "x", func() { srv.RespondNext(wechattest.APIPhoneNumber, 1, 200, "text/html", "<!doctype html>") }, isErr(wechat.ErrBadResponse)},
		{"no phone_info", "x", func() {
			srv.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", `{"errcode":0,"errmsg":"ok"}`)
		}, isErr(wechat.ErrBadResponse)},
		{"bad countryCode", "x", func() {
			srv.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", `{"phone_info":{"purePhoneNumber":"1","countryCode":true}}`)
		}, isErr(wechat.ErrBadResponse)},
		{"timeout", "slow", func() { srv.SetDelay(wechattest.APIPhoneNumber, 2*time.Second) }, isErr(wechat.ErrTimeout)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			if _, err := c.PhoneNumber(ctx(t), tt.code, openidOf(tt.code)); !tt.check(err) {
				t.Errorf("err = %v (%T)", err, err)
			}
		})
	}
}

func TestPhoneInfoJSON(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`{"countryCode":86}`, "86", false},
		{`{"countryCode":"86"}`, "86", false},
		{`{"countryCode": 1 }`, "1", false},
		{`{"countryCode":null}`, "", false},
		{`{}`, "", false},
		{`{"countryCode":86.5}`, "", true},
		{`{"countryCode":-86}`, "", true},
		{`{"countryCode":8.6e1}`, "", true},
		{`{"countryCode":true}`, "", true},
		{`{"countryCode":{}}`, "", true},
		{`{"countryCode":123456789012}`, "", true},
	} {
		var p wechat.PhoneInfo
		err := json.Unmarshal([]byte(tt.in), &p)
		if (err != nil) != tt.wantErr || p.CountryCode != tt.want {
			t.Errorf("%s: countryCode %q, err %v", tt.in, p.CountryCode, err)
		}
	}
	var p wechat.PhoneInfo
	in := `{"phoneNumber":"+1 4155550100","purePhoneNumber":"4155550100","countryCode":1,"watermark":{"appid":"wx1","timestamp":5}}`
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	if p.PhoneNumber != "+1 4155550100" || p.PurePhoneNumber != "4155550100" || p.Watermark.AppID != "wx1" || p.Watermark.Timestamp != 5 {
		t.Errorf("decoded %+v", p)
	}
	out, _ := json.Marshal(p)
	if want := `{"phoneNumber":"+1 4155550100","purePhoneNumber":"4155550100","countryCode":"1","watermark":{"appid":"wx1","timestamp":5}}`; string(out) != want {
		t.Errorf("marshal = %s", out)
	}
	if s := p.String(); s != "+1 415***0100" {
		t.Errorf("String() = %q", s)
	}
	if m := wechat.MaskPhone("13800001111"); m != "138****1111" {
		t.Errorf("MaskPhone = %q", m)
	}
	if err := json.Unmarshal([]byte(`[]`), &p); err == nil || errors.Is(err, wechat.ErrBadResponse) {
		t.Errorf("array: err = %v", err)
	}
}

// TestPhoneNumberBoundToUser: a phone code made for bob, posted as
// alice's, is refused and binds nothing; bob can still use it.
func TestPhoneNumberBoundToUser(t *testing.T) {
	srv, c := newPair(t)
	p, err := c.PhoneNumber(ctx(t), "bob", openidOf("alice"))
	if p != nil || !wechat.IsCodeNotForUser(err) || wechat.IsInvalidCode(err) {
		t.Fatalf("bob's code as alice: %v, err = %v", p, err)
	}
	if p := phone(t, c, "bob"); p.PurePhoneNumber == "" {
		t.Errorf("bob's own call: %+v", p)
	}
	if _, err := c.PhoneNumber(ctx(t), "alice", ""); !errors.Is(err, wechat.ErrInvalidInput) {
		t.Errorf("no openid: err = %v, want ErrInvalidInput", err)
	}
	if got := srv.Calls(wechattest.APIPhoneNumber); got != 2 {
		t.Errorf("getuserphonenumber calls = %d, want 2", got)
	}
}

// TestPhoneNumberWatermark: phone_info must be watermarked for our app.
func TestPhoneNumberWatermark(t *testing.T) {
	srv, c := newPair(t)
	srv.SetPhoneWatermarkAppID("wxother")
	if p, err := c.PhoneNumber(ctx(t), "alice", openidOf("alice")); p != nil || !errors.Is(err, wechat.ErrWatermark) {
		t.Errorf("another app's watermark: %v, err = %v", p, err)
	}
	srv.SetPhoneWatermarkAppID("")
	phone(t, c, "alice:2")
	for name, body := range map[string]string{
		"no watermark":   `{"errcode":0,"phone_info":{"purePhoneNumber":"13800001111","countryCode":86}}`,
		"no appid":       `{"errcode":0,"phone_info":{"purePhoneNumber":"13800001111","watermark":{"timestamp":1}}}`,
		"null watermark": `{"errcode":0,"phone_info":{"purePhoneNumber":"13800001111","watermark":null}}`,
		"appid case":     `{"errcode":0,"phone_info":{"purePhoneNumber":"13800001111","watermark":{"appid":"WX0123456789ABCDEF"}}}`,
	} {
		srv.RespondNext(wechattest.APIPhoneNumber, 1, 200, "application/json", body)
		if p, err := c.PhoneNumber(ctx(t), "alice:3", openidOf("alice")); p != nil || !errors.Is(err, wechat.ErrWatermark) {
			t.Errorf("%s: %v, err = %v", name, p, err)
		}
	}
}
