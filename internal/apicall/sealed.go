package apicall

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/opendata"
)

// Sealed is the open-data half of a platform client: the scheme all of
// QQ, Douyin and Kuaishou copied from WeChat (AES-128-CBC under the
// 16-byte session key, a JSON object with watermark.appid), with the
// errors translated into the package's sentinels.
type Sealed struct {
	// Prefix of the package's error strings, e.g. "qq".
	Prefix string
	// AppID the watermark must name.
	AppID string
	// MaxAge of the watermark timestamp; 0 is no age check.
	MaxAge time.Duration
	// Now is the clock of the age check.
	Now func() time.Time
	// ErrInvalidInput, ErrDecrypt and ErrWatermark are the package's
	// sentinels.
	ErrInvalidInput, ErrDecrypt, ErrWatermark error
}

// Decrypt opens encryptedData (see opendata.Open, with a 16-byte key) and
// checks its watermark. The object returned is re-encoded from what was
// checked; a repeated key is the package's ErrDecrypt.
func (s Sealed) Decrypt(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	obj, err := opendata.Open(sessionKey, encryptedData, iv, 16)
	if err == nil {
		err = opendata.CheckWatermark(obj, s.AppID, s.MaxAge, s.Now())
	}
	if err != nil {
		return nil, s.translate(err)
	}
	return obj, nil
}

// DecryptPhone is Decrypt, then the phone payload (opendata.ParsePhone).
func (s Sealed) DecryptPhone(sessionKey, encryptedData, iv string) (opendata.Phone, error) {
	obj, err := s.Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return opendata.Phone{}, err
	}
	p, err := opendata.ParsePhone(obj)
	if err != nil {
		return opendata.Phone{}, s.translate(err)
	}
	return p, nil
}

// translate turns an opendata error into the package's sentinel with the
// same detail (which names an input, never its value).
func (s Sealed) translate(err error) error {
	var oe *opendata.Error
	if !errors.As(err, &oe) {
		return NewError(s.Prefix, "", s.ErrDecrypt, "")
	}
	kind := s.ErrDecrypt
	switch oe.Kind {
	case opendata.ErrInvalidInput:
		kind = s.ErrInvalidInput
	case opendata.ErrWatermark:
		kind = s.ErrWatermark
	}
	return NewError(s.Prefix, "", kind, oe.Detail)
}
