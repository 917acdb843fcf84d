package douyin

import "encoding/json"

// PhoneInfo is a user's phone number from the legacy getPhoneNumber form.
type PhoneInfo struct {
	// PhoneNumber is the number as the user sees it; with a country code
	// outside mainland China.
	PhoneNumber string
	// PurePhoneNumber is the number without country code.
	PurePhoneNumber string
	// CountryCode is the calling code without "+", e.g. "86" (sent as a
	// JSON string or number: both are accepted).
	CountryCode string
}

// Decrypt decrypts open data the mini program received from Douyin with the
// user's session key and returns the JSON object after checking its
// watermark. It checks, each before the step that needs it: standard
// base64 (a space read as '+'), a 16-byte key and IV, a ciphertext that is
// a non-zero multiple of 16 bytes (else ErrInvalidInput); strict PKCS#7
// and exactly one JSON object in which no object repeats a key (else
// ErrDecrypt); watermark.appid is this app's, and with WithMaxDataAge the
// timestamp recent enough (else ErrWatermark).
//
// The object returned is re-encoded from what was checked. A repeated key
// is refused because Douyin never sends one: {"openId":"x","openId":"y"}
// would pass a check that reads the last key while a parser that keeps
// the first reads x.
func (c *Client) Decrypt(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	return c.c.Sealed.Decrypt(sessionKey, encryptedData, iv)
}

// DecryptPhone decrypts the legacy getPhoneNumber payload. A payload
// without a phone number is ErrDecrypt.
func (c *Client) DecryptPhone(sessionKey, encryptedData, iv string) (*PhoneInfo, error) {
	p, err := c.c.Sealed.DecryptPhone(sessionKey, encryptedData, iv)
	if err != nil {
		return nil, err
	}
	info := PhoneInfo(p)
	return &info, nil
}
