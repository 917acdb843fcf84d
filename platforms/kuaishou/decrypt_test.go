package kuaishou_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/platformtest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/kuaishou"
)

func TestDecrypt(t *testing.T) {
	srv, c := newPair(t)
	other := kuaishou.NewClient("another-app", secret)
	platformtest.CheckDecrypt(t, platformtest.Subject{
		AppID: appID,
		Login: func(t *testing.T, code string) string {
			s, err := c.Code2Session(ctx(t), code)
			if err != nil {
				t.Fatal(err)
			}
			return s.SessionKey
		},
		Seal:      srv.Seal,
		SealPhone: srv.SealPhone,
		Decrypt:   c.Decrypt,
		DecryptPhone: func(k, d, iv string) (string, string, string, error) {
			p, err := c.DecryptPhone(k, d, iv)
			if err != nil {
				return "", "", "", err
			}
			return p.PhoneNumber, p.PurePhoneNumber, p.CountryCode, nil
		},
		OtherApp:  other.Decrypt,
		Sentinels: platformtest.Sentinels{ErrInvalidInput: kuaishou.ErrInvalidInput, ErrDecrypt: kuaishou.ErrDecrypt, ErrWatermark: kuaishou.ErrWatermark},
	})
}

func TestDecryptMaxAge(t *testing.T) {
	srv, _ := newPair(t)
	now := time.Unix(1800000000, 0)
	srv.SetClock(func() time.Time { return now })
	c := kuaishou.NewClient(appID, secret, kuaishou.WithBaseURL(srv.URL), kuaishou.WithMaxDataAge(time.Hour), kuaishou.WithClock(func() time.Time { return now.Add(2 * time.Hour) }))
	s, err := c.Code2Session(ctx(t), "gina")
	if err != nil {
		t.Fatal(err)
	}
	d, iv, _ := srv.Seal("gina", map[string]any{"x": json.Number("1")})
	if _, err := c.Decrypt(s.SessionKey, d, iv); err == nil {
		t.Error("old data accepted")
	}
	fresh := kuaishou.NewClient(appID, secret, kuaishou.WithMaxDataAge(time.Hour), kuaishou.WithClock(func() time.Time { return now }))
	if _, err := fresh.Decrypt(s.SessionKey, d, iv); err != nil {
		t.Error(err)
	}
	srv.SetPhone("gina", "2025550123", "1")
	d, iv, _ = srv.SealPhone("gina")
	if p, err := fresh.DecryptPhone(s.SessionKey, d, iv); err != nil || p.PhoneNumber != "+1 2025550123" || p.CountryCode != "1" {
		t.Errorf("phone = %+v, %v", p, err)
	}
}
