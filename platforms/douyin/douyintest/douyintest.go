// Package douyintest is a fake of the Douyin mini app login API, for tests
// and demos of package douyin: NOT Douyin, not for production.
//
// The shapes follow Douyin's "code2Session" page
// (developer.open-douyin.com, mini-app/develop/server/log-in/code-2-session):
// POST /api/apps/v2/jscode2session, JSON body {appid, secret, code,
// anonymous_code}; every answer is {"err_no", "err_tips", "log_id",
// "data"}, data {session_key, openid, anonymous_openid, unionid} on
// success (err_no 0, err_tips "success") and {} on failure. Error numbers,
// from the legacy jscode2session page: -1 system error, 40015 bad appid,
// 40017 bad secret, 40018 bad code (also a used or empty code: Douyin
// documents codes as single use and has no separate number), 40019 bad
// anonymous_code.
//
// Codes name users, as in wechattest: "alice" and "alice:2" are codes of
// user alice; each code works once; a code starting with "bad" or with a
// space is 40018. An anonymous code names its anonymous user the same way
// and gives anonymous_openid. Every login gives a new session key.
//
// A *Fake (embedding the shared fake body) has, besides ServeHTTP:
// AppID, SetClock, FailNext(errcode, n), RespondNext(n, status,
// contentType, body), SetDelay, Calls, OpenID(user),
// AnonymousOpenID(user), SessionKey(user), SetUnionID, SetPhone,
// Seal(user, payload) and SealPhone(user). It serves
// GET /_mock/seal_phone?user= and POST /_mock/seal?user= like wechattest.
package douyintest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/internal/fakeplatform"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// ErrNoSession is returned by Seal and SealPhone for a user who never
// logged in.
var ErrNoSession = fakeplatform.ErrNoSession

// Error numbers the fake answers with.
const (
	CodeSystemError      = -1
	CodeBadAppID         = 40015
	CodeBadSecret        = 40017
	CodeBadCode          = 40018
	CodeBadAnonymousCode = 40019
)

// Fake is a fake Douyin login API for one app. It is an http.Handler.
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
		Name:        "douyin",
		Method:      http.MethodPost,
		Path:        "/api/apps/v2/jscode2session",
		ContentType: "application/json",
		Read:        read,
		Success: func(l fakeplatform.Login) any {
			return envelope(0, map[string]any{"session_key": l.SessionKey, "openid": l.OpenID,
				"anonymous_openid": l.AnonymousOpenID, "unionid": l.UnionID})
		},
		Failure: func(code int) any { return envelope(code, map[string]any{}) },
		Codes: fakeplatform.Codes{AppID: CodeBadAppID, Secret: CodeBadSecret, EmptyCode: CodeBadCode,
			BadCode: CodeBadCode, UsedCode: CodeBadCode},
		OpenID: fakeplatform.HexOpenID("_000", 16),
		Help:   help,
	}
}

func read(r *http.Request) (fakeplatform.LoginRequest, int) {
	var req struct {
		AppID         string `json:"appid"`
		Secret        string `json:"secret"`
		Code          string `json:"code"`
		AnonymousCode string `json:"anonymous_code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&req); err != nil {
		return fakeplatform.LoginRequest{}, CodeBadAppID // an unreadable body has no appid
	}
	if req.AnonymousCode != "" {
		if _, ok := wechattest.UserOfCode(req.AnonymousCode); !ok {
			return fakeplatform.LoginRequest{}, CodeBadAnonymousCode
		}
	}
	return fakeplatform.LoginRequest{AppID: req.AppID, Secret: req.Secret, Code: req.Code, AnonymousCode: req.AnonymousCode}, 0
}

func envelope(code int, data map[string]any) map[string]any {
	var id [10]byte
	_, _ = rand.Read(id[:])
	return map[string]any{"err_no": code, "err_tips": tips(code), "log_id": strings.ToUpper(hex.EncodeToString(id[:])), "data": data}
}

func tips(code int) string {
	switch code {
	case 0:
		return "success"
	case CodeSystemError:
		return "system error"
	case CodeBadAppID:
		return "bad appid"
	case CodeBadSecret:
		return "bad secret"
	case CodeBadCode:
		return "bad code"
	case CodeBadAnonymousCode:
		return "bad anonymous_code"
	}
	return "error"
}

const help = `douyintest: a fake Douyin mini app login API. NOT Douyin, not for production.

  POST /api/apps/v2/jscode2session   {"appid","secret","code","anonymous_code"}

Codes name users: "alice" and "alice:2" are codes of user alice. Each code
works once (err_no 40018 after); a code starting with "bad" or with a space
is 40018. Every login gives a new session_key.

Helpers:
  GET  /_mock/seal_phone?user=alice   -> {"encryptedData","iv"}: alice's phone number
  POST /_mock/seal?user=alice  {...}  -> {"encryptedData","iv"}: the object plus a watermark
  (409 if the user has not logged in yet)
`
