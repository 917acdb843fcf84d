// Package qqtest is a fake of the QQ mini program login API, for tests and
// demos of package qq: NOT QQ, not for production.
//
// The shapes follow QQ's code2Session page (w3cschool qqxiaochengxu
// mirror), which is WeChat's API on another host: GET /sns/jscode2session
// with appid, secret, js_code and grant_type=authorization_code; success
// {"openid", "session_key", "unionid"?}; failure {"errcode", "errmsg"}.
// QQ documents -1, 40029 and 45011 only; for a wrong appid or secret the
// fake answers WeChat's 40013 and 40125, for a missing code 41008, and for
// a used code 40029 (the only code error QQ documents).
//
// Codes name users, as in wechattest: "alice" and "alice:2" are codes of
// user alice; each code works once; a code starting with "bad" or with a
// space is 40029. Every login gives a new session key; the openid is the
// same for the same (app, user).
//
// A *Fake (embedding the shared fake body) has, besides ServeHTTP:
// AppID, SetClock, FailNext(errcode, n), RespondNext(n, status,
// contentType, body), SetDelay, Calls, OpenID(user), SessionKey(user),
// SetUnionID, SetPhone, Seal(user, payload) and SealPhone(user). It serves
// GET /_mock/seal_phone?user= and POST /_mock/seal?user= like wechattest.
package qqtest

import (
	"net/http"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in.
var ErrNoSession = fakeplatform.ErrNoSession

// Errcodes the fake answers with.
const (
	CodeBusy          = -1
	CodeInvalidCode   = 40029
	CodeRateLimited   = 45011
	CodeInvalidAppID  = 40013
	CodeInvalidSecret = 40125
	CodeMissingCode   = 41008
	CodeBadGrantType  = 40002
)

// Fake is a fake QQ login API for one app. It is an http.Handler.
type Fake struct{ *fakeplatform.Fake }

// Server is a Fake on a loopback port; URL is its base URL.
type Server struct{ *fakeplatform.Server }

// New returns a Fake for the app appID with secret secret.
func New(appID, secret string) *Fake { return &Fake{fakeplatform.New(platform(), appID, secret)} }

// NewServer starts a Fake on a loopback port. Close it when done.
func NewServer(appID, secret string) *Server {
	return &Server{fakeplatform.NewServer(platform(), appID, secret)}
}

func platform() fakeplatform.Platform {
	return fakeplatform.Platform{
		Name:        "qq",
		Method:      http.MethodGet,
		Path:        "/sns/jscode2session",
		ContentType: "text/plain", // as WeChat, whose API QQ copied
		Read: func(r *http.Request) (fakeplatform.LoginRequest, int) {
			q := r.URL.Query()
			if q.Get("grant_type") != "authorization_code" {
				return fakeplatform.LoginRequest{}, CodeBadGrantType
			}
			return fakeplatform.LoginRequest{AppID: q.Get("appid"), Secret: q.Get("secret"), Code: q.Get("js_code")}, 0
		},
		Success: func(l fakeplatform.Login) any {
			b := map[string]any{"openid": l.OpenID, "session_key": l.SessionKey}
			if l.UnionID != "" {
				b["unionid"] = l.UnionID
			}
			return b
		},
		Failure: func(code int) any { return map[string]any{"errcode": code, "errmsg": errmsg(code)} },
		Codes: fakeplatform.Codes{AppID: CodeInvalidAppID, Secret: CodeInvalidSecret, EmptyCode: CodeMissingCode,
			BadCode: CodeInvalidCode, UsedCode: CodeInvalidCode},
		OpenID: fakeplatform.HexOpenID("", 16), // QQ openids are 32 upper-case hex digits
		Help:   help,
	}
}

func errmsg(code int) string {
	switch code {
	case CodeBusy:
		return "system busy"
	case CodeInvalidCode:
		return "invalid code"
	case CodeRateLimited:
		return "api minute-quota reach limit"
	case CodeInvalidAppID:
		return "invalid appid"
	case CodeInvalidSecret:
		return "invalid appsecret"
	case CodeMissingCode:
		return "missing code"
	case CodeBadGrantType:
		return "invalid grant_type"
	}
	return "error"
}

const help = `qqtest: a fake QQ mini program login API. NOT QQ, not for production.

  GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code

Codes name users: "alice" and "alice:2" are codes of user alice. Each code
works once (40029 after). "" is 41008; a code starting with "bad" or with a
space is 40029. Every login gives a new session_key.

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: alice's phone number
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the object plus a watermark
  (409 if the user has not logged in yet)
`
