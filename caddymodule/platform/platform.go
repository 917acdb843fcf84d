// Package platform is the contract between the wechat_auth handler and the
// mini-program platforms it logs users in with: the Platform interface, the
// identity a login gives, the failure kinds the handler answers, and the
// Module interface of the Caddy modules in the wechat_auth.platforms
// namespace.
//
// A third-party platform is a Caddy module whose ID is
// "wechat_auth.platforms.<name>" and that implements Module. Its Platform
// exchanges login codes and classifies its errors; the optional interfaces
// Sealer (open data sealed with the session key), SignedPhoner (a phone
// number the platform signs rather than seals) say what else it can do. A
// platform with neither has no /phone and no /decrypt.
//
// The handler keeps the guarantees of the WeChat contract on every
// platform: retried codes answered from the kept result, refused codes
// remembered and limited (Classify's InvalidCode), the session-key grace
// (Sealer only: Decrypt failures retry with the previous key), both stores,
// revocation, the identity headers and the metrics.
package platform

import (
	"context"
	"encoding/json"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Namespace is the Caddy module namespace of platforms.
const Namespace = "wechat_auth.platforms"

// Module is a platform's Caddy module. Caddy provisions it (its own
// settings, such as key files, are resolved and checked there), then the
// handler calls New once with the app's settings.
type Module interface {
	caddy.Module
	// Info describes the platform: names, defaults, what it needs.
	Info() Info
	// New returns the platform's client for one app. It is called after
	// Provision; an error is a configuration error, shown at start.
	New(app App) (Platform, error)
}

// Info describes a platform to the handler.
type Info struct {
	// Title names the platform in answers and logs, e.g. "Douyin".
	Title string
	// LoginCall is the client call that makes a login code, as the
	// answer to a refused code names it, e.g. "tt.login".
	LoginCall string
	// HeaderPrefix starts the default identity header names: prefix +
	// "-OpenID", "-UnionID", "-Phone", "-Country-Code", "-AppID". Every
	// handler strips the client's copies of every platform's defaults.
	HeaderPrefix string
	// APIBase is the platform's server API, used when api_base is unset.
	APIBase string
	// NoSecret is true for a platform without an app secret (Alipay):
	// an app_secret given there is a configuration error.
	NoSecret bool
	// CheckAppID refuses what cannot be one of the platform's app ids; nil
	// accepts any non-empty id.
	CheckAppID func(id string) error
}

// App is the configuration of one app, resolved (placeholders replaced)
// and checked by the handler.
type App struct {
	// AppID is the app's id (Baidu: the App Key).
	AppID string
	// AppSecret is the app secret, revealed; "" when Info.NoSecret.
	AppSecret string
	// APIBase is the server API's base URL; "" means Info.APIBase.
	APIBase string
	// Timeout bounds each call to the platform's server API.
	Timeout time.Duration
	// MaxDataAge is the oldest sealed data's watermark may be (0: no
	// check), for platforms whose watermark has a timestamp.
	MaxDataAge time.Duration
	// Observe, when not nil, is called after every exchange with the
	// platform's server API (each attempt) with the API's name, the time
	// it took and its error, for the metrics. Safe for concurrent use.
	Observe func(api string, elapsed time.Duration, err error)
}

// Identity is what a login code is exchanged for.
type Identity struct {
	// OpenID identifies the user within the app. Required.
	OpenID string
	// UnionID identifies the user across the apps of one developer, when
	// the platform gives one.
	UnionID string
	// SessionKey opens the user's sealed data (Sealer); "" on a platform
	// without one. It never leaves the server.
	SessionKey string
}

// Phone is a user's phone number.
type Phone struct {
	// PhoneNumber is the number as the user sees it.
	PhoneNumber string
	// PurePhoneNumber is the number without country code: what is bound
	// and forwarded.
	PurePhoneNumber string
	// CountryCode is the calling code without "+" ("86"), or "" when the
	// platform gives none (no country-code header is then forwarded).
	CountryCode string
}

// Platform is one app's client of a platform's server API. It must be safe
// for concurrent use, bound every call by App.Timeout, and keep secrets
// (app secret, keys, session keys) out of its errors.
type Platform interface {
	// Login exchanges a login code for the user's identity.
	Login(ctx context.Context, code string) (Identity, error)
	// Classify says how one of this platform's errors is answered.
	Classify(err error) Failure
	// ErrorCode is the platform's own code in err ("40029",
	// "invalid_grant"), or "" when err carries none. It is logged,
	// counted in a metric label and kept with a refused code.
	ErrorCode(err error) string
}

// Sealer is a Platform whose open data is sealed with the user's session
// key (WeChat's scheme and its copies). Only a Sealer serves /decrypt, the
// legacy phone form and the session-key grace; its errors of data that
// does not open with a key are classified Decrypt, which makes the handler
// try the previous key.
type Sealer interface {
	// OpenSealed decrypts open data and returns the JSON object after
	// the platform's watermark check.
	OpenSealed(sessionKey, encryptedData, iv string) (json.RawMessage, error)
	// OpenPhone decrypts the phone button's sealed payload.
	OpenPhone(sessionKey, encryptedData, iv string) (Phone, error)
}

// SignedPhoner is a Platform whose phone button gives a payload the
// platform signed (Alipay's my.getPhoneNumber {response, sign}).
type SignedPhoner interface {
	// OpenSignedPhone verifies and opens the payload. sign may be "" when
	// response is the whole payload as the client received it.
	OpenSignedPhone(response, sign string) (Phone, error)
}

// Failure is how the handler answers an error: its kind and, optionally,
// a sentence of the platform's own.
type Failure struct {
	Kind Kind
	// Message replaces the handler's sentence for Kind when not "". It
	// must be a fixed sentence: never text of the error, which may hold
	// an upstream message or a URL.
	Message string
}

// Kind is a failure kind of the handler's error table.
type Kind int

// The failure kinds, with the answer the handler gives each.
const (
	// Unknown: nothing the platform recognises; 502 wechat_error.
	Unknown Kind = iota
	// InvalidCode: the login code is wrong, expired or used; 401
	// invalid_code, remembered and counted against the client.
	InvalidCode
	// UserBlocked: the platform refuses the user; 403 user_blocked.
	UserBlocked
	// RateLimited: the platform's rate limit; 429 rate_limited.
	RateLimited
	// Timeout: no answer in time; 504 wechat_timeout.
	Timeout
	// Unavailable: unreachable or busy after the retry; 503
	// wechat_unavailable.
	Unavailable
	// BadResponse: an unusable or unverifiable answer, or a refusal that
	// is a configuration error; 502 wechat_error.
	BadResponse
	// InvalidInput: malformed client data (base64, sizes, code); 400
	// invalid_request.
	InvalidInput
	// Decrypt: sealed data did not open (or its sign did not verify);
	// 400 decrypt_failed.
	Decrypt
	// Watermark: the data was sealed for another app or is too old; 400
	// watermark_mismatch.
	Watermark
)

// String names k as in logs ("invalid_code", "timeout", ...).
func (k Kind) String() string {
	switch k {
	case InvalidCode:
		return "invalid_code"
	case UserBlocked:
		return "user_blocked"
	case RateLimited:
		return "rate_limited"
	case Timeout:
		return "timeout"
	case Unavailable:
		return "unavailable"
	case BadResponse:
		return "bad_response"
	case InvalidInput:
		return "invalid_input"
	case Decrypt:
		return "decrypt"
	case Watermark:
		return "watermark"
	}
	return "unknown"
}
