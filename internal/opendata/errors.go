package opendata

import "errors"

// Sentinel errors: the Kind of every *Error of this package.
var (
	// ErrInvalidInput: an input is unusable before any decryption: bad
	// base64, a key that is not 16, 24 or 32 bytes, an IV that is not 16
	// bytes, a ciphertext that is not a non-zero multiple of 16 bytes.
	ErrInvalidInput = errors.New("opendata: invalid input")

	// ErrDecrypt: the data did not decrypt to what was expected: bad
	// PKCS#7 padding (typically: sealed under another key), or a
	// plaintext that is not exactly one JSON object without repeated
	// keys.
	ErrDecrypt = errors.New("opendata: decrypt failed")

	// ErrWatermark: the object has no usable watermark, a watermark for
	// another app, or one outside the accepted age.
	ErrWatermark = errors.New("opendata: watermark mismatch")
)

// Error is an error of this package. Platform clients translate Kind into
// their own sentinel and keep Detail.
type Error struct {
	// Kind is ErrInvalidInput, ErrDecrypt or ErrWatermark.
	Kind error
	// Detail says what was wrong ("iv is not 16 bytes") without quoting
	// any input; empty for ErrDecrypt, which is one message whatever
	// failed (see DecryptObject).
	Detail string
}

// Error returns the Kind's text, then ": " and Detail if there is one.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Unwrap returns Kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, detail string) error { return &Error{Kind: kind, Detail: detail} }
