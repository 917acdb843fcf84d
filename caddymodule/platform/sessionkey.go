package platform

import (
	"context"
	"encoding/json"
	"errors"
)

// SessionKeyPlatform is the Platform and Sealer of a platform that copied
// WeChat's scheme (a code for an openid and a session key, open data
// sealed under it), built from its client's functions and error
// predicates, so that each such module keeps only what differs.
type SessionKeyPlatform struct {
	// Code2Session exchanges a login code with the client.
	Code2Session func(ctx context.Context, code string) (Identity, error)
	// Decrypt opens sealed data and checks its watermark.
	Decrypt func(sessionKey, encryptedData, iv string) (json.RawMessage, error)
	// DecryptPhone opens the phone button's sealed payload.
	DecryptPhone func(sessionKey, encryptedData, iv string) (Phone, error)
	// Refusals are the platform's own refusals, checked in order before
	// Sentinels.
	Refusals []Refusal
	// Sentinels are the client package's sentinel errors.
	Sentinels Sentinels
	// Code is the platform's code in err, or "".
	Code func(err error) string
}

// Refusal is one of a platform's refusals: a predicate on its errors and
// the kind it is answered with.
type Refusal struct {
	// Is reports whether err is this refusal.
	Is func(err error) bool
	// Kind is the refusal's failure kind.
	Kind Kind
}

// APICode is code(e) of the first error of type E in err's chain, or "".
func APICode[E error](err error, code func(E) string) string {
	var e E
	if errors.As(err, &e) {
		return code(e)
	}
	return ""
}

// Login is the client's code exchange.
func (p *SessionKeyPlatform) Login(ctx context.Context, code string) (Identity, error) {
	return p.Code2Session(ctx, code)
}

// Classify answers the first matching refusal, else the sentinel's kind.
func (p *SessionKeyPlatform) Classify(err error) Failure {
	for _, r := range p.Refusals {
		if r.Is(err) {
			return Failure{Kind: r.Kind}
		}
	}
	return Failure{Kind: p.Sentinels.Kind(err)}
}

// ErrorCode is the platform's own code in err.
func (p *SessionKeyPlatform) ErrorCode(err error) string { return p.Code(err) }

// OpenSealed decrypts open data and checks its watermark.
func (p *SessionKeyPlatform) OpenSealed(sessionKey, encryptedData, iv string) (json.RawMessage, error) {
	return p.Decrypt(sessionKey, encryptedData, iv)
}

// OpenPhone decrypts the phone button's sealed payload.
func (p *SessionKeyPlatform) OpenPhone(sessionKey, encryptedData, iv string) (Phone, error) {
	return p.DecryptPhone(sessionKey, encryptedData, iv)
}

// Interface guards
var (
	_ Platform = (*SessionKeyPlatform)(nil)
	_ Sealer   = (*SessionKeyPlatform)(nil)
)
