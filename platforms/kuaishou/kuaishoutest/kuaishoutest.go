// Package kuaishoutest is a fake of the Kuaishou mini program login API,
// for tests and demos of package kuaishou: NOT Kuaishou, not for
// production.
//
// The shapes: POST /oauth2/mp/code2session with a form body app_id,
// app_secret, js_code; success {"result": 1, "session_key", "open_id"};
// failure {"result", "error", "error_msg"} (SDK shapes, see package
// kuaishou). Result numbers, from Kuaishou's mini program OAuth server
// page: 100200100 a wrong or empty parameter (the fake's answer to an
// empty, malformed or used js_code) and 100200101 app_id/app_secret
// verification failed.
//
// Codes name users, as in wechattest: "alice" and "alice:2" are codes of
// user alice; each code works once; a code starting with "bad" or with a
// space is refused. Every login gives a new session key.
//
// A *Fake (embedding the shared fake body) has, besides ServeHTTP:
// AppID, SetClock, FailNext(result, n), RespondNext(n, status,
// contentType, body), SetDelay, Calls, OpenID(user), SessionKey(user),
// SetUnionID, SetPhone, Seal(user, payload) and SealPhone(user). It serves
// GET /_mock/seal_phone?user= and POST /_mock/seal?user= like wechattest.
package kuaishoutest

import (
	"net/http"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in.
var ErrNoSession = fakeplatform.ErrNoSession

// Result numbers the fake answers with.
const (
	ResultOK             = 1
	ResultBadParameter   = 100200100
	ResultBadCredentials = 100200101
)

// Fake is a fake Kuaishou login API for one app. It is an http.Handler.
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
		Name:        "kuaishou",
		Method:      http.MethodPost,
		Path:        "/oauth2/mp/code2session",
		ContentType: "application/json",
		Read: func(r *http.Request) (fakeplatform.LoginRequest, int) {
			r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
			if r.ParseForm() != nil {
				return fakeplatform.LoginRequest{}, ResultBadParameter
			}
			return fakeplatform.LoginRequest{AppID: r.PostForm.Get("app_id"), Secret: r.PostForm.Get("app_secret"), Code: r.PostForm.Get("js_code")}, 0
		},
		Success: func(l fakeplatform.Login) any {
			b := map[string]any{"result": ResultOK, "session_key": l.SessionKey, "open_id": l.OpenID}
			if l.UnionID != "" {
				b["union_id"] = l.UnionID
			}
			return b
		},
		Failure: func(code int) any {
			name, msg := "server_error", "error"
			switch code {
			case ResultBadParameter:
				name, msg = "invalid_request", "参数有误"
			case ResultBadCredentials:
				name, msg = "invalid_client", "验证出错"
			}
			return map[string]any{"result": code, "error": name, "error_msg": msg}
		},
		Codes: fakeplatform.Codes{AppID: ResultBadCredentials, Secret: ResultBadCredentials, EmptyCode: ResultBadParameter,
			BadCode: ResultBadParameter, UsedCode: ResultBadParameter},
		OpenID: fakeplatform.HexOpenID("", 16),
		Help:   help,
	}
}

const help = `kuaishoutest: a fake Kuaishou mini program login API. NOT Kuaishou, not for production.

  POST /oauth2/mp/code2session   form: app_id, app_secret, js_code

Codes name users: "alice" and "alice:2" are codes of user alice. Each code
works once (result 100200100 after); a code starting with "bad" or with a
space is 100200100; a wrong app_id or app_secret is 100200101. Every login
gives a new session_key.

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: alice's phone number
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the object plus a watermark
  (409 if the user has not logged in yet)
`
