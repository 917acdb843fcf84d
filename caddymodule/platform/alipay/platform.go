package alipay

import (
	"context"
	"errors"
	"strings"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/platform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/platforms/alipay"
)

// errNoAESKey: a phone payload came to a gateway without aes_key.
var errNoAESKey = errors.New("alipay: no aes_key configured: phone numbers cannot be decrypted")

// Platform is Alipay for one app.
type Platform struct {
	client    *alipay.Client
	hasAESKey bool
}

// Login is alipay.system.oauth.token. The identity is open_id, or user_id
// for an app not on Alipay's open_id scheme; there is no session key.
func (p *Platform) Login(ctx context.Context, code string) (platform.Identity, error) {
	s, err := p.client.Code2Session(ctx, code)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{OpenID: s.OpenID, UnionID: s.UnionID}, nil
}

// Classify maps an error of the alipay package. A verified refusal in a
// phone payload (the user did not authorize, 40003) is the client's: 400.
// Credential refusals (a key Alipay does not take) are a 502, and so is
// an answer whose sign does not verify; a phone payload whose sign does
// not verify is the client's (400 decrypt_failed).
func (p *Platform) Classify(err error) platform.Failure {
	var apiErr *alipay.APIError
	switch {
	case errors.Is(err, errNoAESKey):
		return platform.Failure{Kind: platform.InvalidInput, Message: "this gateway has no aes_key (Alipay's content key): it cannot read phone numbers"}
	case alipay.IsInvalidCode(err):
		return platform.Failure{Kind: platform.InvalidCode}
	case alipay.IsSystemBusy(err):
		return platform.Failure{Kind: platform.Unavailable}
	case errors.As(err, &apiErr) && apiErr.API == alipay.APIPhoneNumber:
		return platform.Failure{Kind: platform.InvalidInput, Message: "Alipay refused the phone number (has the user authorized it?): ask again"}
	case errors.Is(err, alipay.ErrDecrypt):
		return platform.Failure{Kind: platform.Decrypt, Message: "the phone payload's sign does not verify or it does not decrypt: get it again from my.getPhoneNumber"}
	}
	return platform.Failure{Kind: platform.Sentinels{
		Timeout:      alipay.ErrTimeout,
		Unavailable:  alipay.ErrUnavailable,
		BadResponse:  alipay.ErrBadResponse,
		InvalidInput: alipay.ErrInvalidInput,
	}.Kind(err)}
}

// ErrorCode is Alipay's code and sub_code ("40002.isv.code-invalid").
func (p *Platform) ErrorCode(err error) string {
	var apiErr *alipay.APIError
	if !errors.As(err, &apiErr) {
		return ""
	}
	if apiErr.SubCode == "" {
		return apiErr.Code
	}
	return apiErr.Code + "." + apiErr.SubCode
}

// OpenSignedPhone verifies and decrypts my.getPhoneNumber's payload: the
// response and sign, or (sign "") the whole res.response text.
func (p *Platform) OpenSignedPhone(response, sign string) (platform.Phone, error) {
	if !p.hasAESKey {
		return platform.Phone{}, errNoAESKey
	}
	if sign == "" && strings.HasPrefix(strings.TrimSpace(response), "{") {
		var err error
		if response, sign, err = alipay.ParsePhonePayload([]byte(response)); err != nil {
			return platform.Phone{}, err
		}
	}
	info, err := p.client.DecryptPhone(response, sign)
	if err != nil {
		return platform.Phone{}, err
	}
	return platform.Phone{PhoneNumber: info.PhoneNumber, PurePhoneNumber: info.PurePhoneNumber, CountryCode: info.CountryCode}, nil
}

// Interface guards
var (
	_ platform.Platform     = (*Platform)(nil)
	_ platform.SignedPhoner = (*Platform)(nil)
)
