package opendata

import (
	"encoding/json"
	"strings"
)

// Phone is the phone-number payload of the legacy getPhoneNumber form,
// the same on every platform that seals it.
type Phone struct {
	// PhoneNumber is the number as the user sees it; with a country code
	// for numbers outside mainland China.
	PhoneNumber string
	// PurePhoneNumber is the number without country code.
	PurePhoneNumber string
	// CountryCode is the calling code without "+", e.g. "86".
	CountryCode string
}

// ParsePhone reads phoneNumber, purePhoneNumber and countryCode (keys
// matched exactly) from an object Object returned. countryCode may be a
// JSON string, a small non-negative integer, null or absent. An object
// with no number, or fields of another type, is ErrDecrypt.
func ParsePhone(obj json.RawMessage) (Phone, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return Phone{}, fail(ErrDecrypt, "payload is not a phone number")
	}
	var p Phone
	ok := optString(m["phoneNumber"], &p.PhoneNumber) &&
		optString(m["purePhoneNumber"], &p.PurePhoneNumber) &&
		countryCode(m["countryCode"], &p.CountryCode)
	if !ok || p.PhoneNumber == "" && p.PurePhoneNumber == "" {
		return Phone{}, fail(ErrDecrypt, "payload has no phone number")
	}
	return p, nil
}

func optString(raw json.RawMessage, dst *string) bool {
	if raw == nil || string(raw) == "null" {
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

// countryCode accepts a JSON string, an integer of at most 8 digits, or
// null/absent: platforms send it either way.
func countryCode(raw json.RawMessage, dst *string) bool {
	s := string(raw)
	if s == "" || s == "null" || strings.HasPrefix(s, `"`) {
		return optString(raw, dst)
	}
	if len(s) > 8 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	*dst = s
	return true
}
