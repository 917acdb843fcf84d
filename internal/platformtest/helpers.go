package platformtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/apicall"
)

// Ctx is a context for one test, cancelled when it ends.
func Ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// Code is the platform's code in err (an *APIError of any platform
// package), or 0.
func Code(err error) int {
	var ce apicall.Coded
	if errors.As(err, &ce) {
		return ce.APICode()
	}
	return 0
}

// CheckDecoded is the verdict of a response-decoder fuzz target on err:
// nil, an API error whose code is not okCode with a message of at most
// 256 bytes (plus "..."), or badResponse; and never secret in the text.
func CheckDecoded(t *testing.T, err, badResponse error, okCode int, secret string) {
	t.Helper()
	var ce apicall.Coded
	switch {
	case err == nil:
		return
	case errors.As(err, &ce):
		if ce.APICode() == okCode || len(ce.Error()) > 512 {
			t.Fatalf("bad API error %v", ce)
		}
	case !errors.Is(err, badResponse):
		t.Fatalf("unexpected error class: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("secret in %q", err)
	}
}

// CheckDecryptClass is the verdict of a Decrypt fuzz target: it fails
// only with one of the three sentinels, and a fuzzed input never gives a
// phone number.
func CheckDecryptClass(t *testing.T, err, phoneErr error, s Sentinels) {
	t.Helper()
	if err != nil && !errors.Is(err, s.ErrInvalidInput) && !errors.Is(err, s.ErrDecrypt) && !errors.Is(err, s.ErrWatermark) {
		t.Fatalf("unexpected error class: %v", err)
	}
	if phoneErr == nil {
		t.Fatal("a phone number from fuzz")
	}
}
