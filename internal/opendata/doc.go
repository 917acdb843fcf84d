// Package opendata opens the "open data" that WeChat-style mini-program
// platforms (WeChat, QQ, Douyin, Kuaishou, Baidu) seal for the mini program:
// JSON, PKCS#7-padded, AES-CBC under the user's session key, with a
// watermark naming the app.
//
// It is the one implementation of those steps for every platform client of
// this module. Each step checks its input before the step that needs it
// (crypto/cipher panics on bad sizes), and no error quotes any input: a
// session key or a decrypted phone number never reaches an error string.
//
// Every error of this package is an *Error whose Kind is one of
// ErrInvalidInput, ErrDecrypt and ErrWatermark; errors.Is works with the
// sentinels directly.
package opendata
