package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestWeChatFailures(t *testing.T) {
	a := startGateway(t, "")
	cases := []struct {
		name   string
		setup  func()
		code   string
		status int
		errc   string
	}{
		{"invalid code", func() { a.fake.FailNext(wechattest.APICode2Session, 40029, 1) }, "u1", 401, "invalid_code"},
		{"code used", func() { a.fake.FailNext(wechattest.APICode2Session, 40163, 1) }, "u2", 401, "invalid_code"},
		{"blocked", func() { a.fake.FailNext(wechattest.APICode2Session, 40226, 1) }, "u3", 403, "user_blocked"},
		{"rate limited", func() { a.fake.FailNext(wechattest.APICode2Session, 45011, 1) }, "u4", 429, "rate_limited"},
		{"busy twice", func() { a.fake.FailNext(wechattest.APICode2Session, -1, 2) }, "u5", 503, "wechat_unavailable"},
		{"unknown errcode", func() { a.fake.FailNext(wechattest.APICode2Session, 99999, 1) }, "u6", 502, "wechat_error"},
		{"bad secret", func() { a.fake.FailNext(wechattest.APICode2Session, 40125, 1) }, "u7", 502, "wechat_error"},
		{"html", func() {
			a.fake.RespondNext(wechattest.APICode2Session, 1, 502, "text/html", "<html><body>Bad Gateway</body></html>")
		}, "u8", 502, "wechat_error"},
		{"truncated json", func() {
			a.fake.RespondNext(wechattest.APICode2Session, 1, 200, "text/plain", `{"openid":"o12`)
		}, "u9", 502, "wechat_error"},
		{"slow", func() { a.fake.SetDelay(wechattest.APICode2Session, 5*time.Second) }, "u10", 504, "wechat_timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			defer a.fake.SetDelay(wechattest.APICode2Session, 0)
			r := a.postJSON("/wechat/login", "", map[string]string{"code": c.code})
			expectError(t, r, c.status, c.errc)
			if c.status == 429 && r.header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
	// WeChat busy (-1) once: the WeChat client calls again, and the login
	// succeeds.
	a.fake.FailNext(wechattest.APICode2Session, -1, 1)
	a.login("busy-once")
}

func TestWeChatDownGatewayUp(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("ivan")
	a.fake.Close()
	expectError(t, a.postJSON("/wechat/login", "", map[string]string{"code": "ivan:2"}), 503, "wechat_unavailable")
	expectError(t, a.postJSON("/wechat/phone", tok, map[string]string{"code": "ivan"}), 503, "wechat_unavailable")
	if st, h := a.upstreamHeaders(tok); st != 200 || h.Get("X-Wechat-Openid") == "" {
		t.Fatalf("pass-through during a WeChat outage: %d", st)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	logFile := t.TempDir() + "/caddy.log"
	a := newApp(t)
	fake := a.fake
	fake.SetPhone("leo", "13812341111", "86")
	a.load(strings.Replace(globalOptions(), "skip_install_trust", "skip_install_trust\n\tlog {\n\t\toutput file "+logFile+"\n\t\tlevel INFO\n\t}", 1) + a.site(""))

	tok := a.login("leo")
	sessionKey := fake.SessionKey("leo")
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo"})
	enc, iv, _ := fake.SealPhone("leo")
	a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc, "iv": iv})
	a.postJSON("/wechat/phone", tok, map[string]string{"encryptedData": enc[:len(enc)-8] + "AAAAAAA=", "iv": iv})
	// A code of its own for each: a code WeChat refused is remembered,
	// and sent again would not reach WeChat.
	for i, code := range []int{40029, 40226, 45011, -1, 40125, 99999} {
		fake.FailNext(wechattest.APICode2Session, code, 2)
		a.postJSON("/wechat/login", "", map[string]string{"code": fmt.Sprintf("leo:x%d", i)})
	}
	// The phone code path's failures carry a rid too.
	fake.FailNext(wechattest.APIPhoneNumber, 40029, 1)
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo:p"})
	fake.RespondNext(wechattest.APICode2Session, 2, 500, "text/html", "<html>"+testSecret+"</html>")
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:y"})
	fake.RevokeTokens()
	fake.FailNext(wechattest.APIStableToken, 40013, 3)
	a.postJSON("/wechat/phone", tok, map[string]string{"code": "leo"})
	fake.SetDelay(wechattest.APICode2Session, 5*time.Second)
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:z"})
	fake.SetDelay(wechattest.APICode2Session, 0)
	fake.Close()
	a.postJSON("/wechat/login", "", map[string]string{"code": "leo:w"})
	a.do("GET", "/api/x", tok, "", nil)
	a.do("POST", "/wechat/logout", tok, "", nil)
	a.do("GET", "/api/x", tok, "", nil)

	// Let the logger flush.
	var logs []byte
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		logs, _ = os.ReadFile(logFile)
		if bytes.Contains(logs, []byte(`"phone bound"`)) && bytes.Contains(logs, []byte(`"login failed"`)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !bytes.Contains(logs, []byte(`"phone bound"`)) || !bytes.Contains(logs, []byte(`138****1111`)) {
		t.Fatalf("expected a masked phone binding in the log:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"app secret":  testSecret,
		"token":       tok,
		"session key": sessionKey,
		"full phone":  "13812341111",
	} {
		if i := bytes.Index(logs, []byte(secret)); secret != "" && i >= 0 {
			t.Errorf("the log holds the %s: %s", name, logs[max(0, i-300):min(len(logs), i+100)])
		}
	}
	if !bytes.Contains(logs, []byte(`"errcode":40226`)) {
		t.Errorf("login failures should log WeChat's errcode")
	}
	// WeChat appends a request id to every errmsg ("invalid code, rid:
	// 6523a4b1-..."): it is WeChat's, and no log line carries it, while
	// the error text without it still does.
	if i := bytes.Index(logs, []byte("rid:")); i >= 0 {
		t.Errorf("the log holds a WeChat rid: %s", logs[max(0, i-300):min(len(logs), i+100)])
	}
	if rid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}`).Find(logs); rid != nil {
		t.Errorf("the log holds a WeChat rid: %s", rid)
	}
	for _, want := range []string{`"error":"wechat: jscode2session: errcode 40029: invalid code"`, `"error":"wechat: getuserphonenumber: errcode 40029: invalid code"`} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// WeChat's request id never reaches a log line, in either of the forms
// WeChat has used, and wrapped errors keep their own text.
func TestErrorFieldDropsWeChatRequestID(t *testing.T) {
	for msg, want := range map[string]string{
		"invalid code, rid: 6523a4b1-0b7e64ee-4b9e0a5d":    "invalid code",
		"code been used, rid: 6523a4b1-0b7e64ee-4b9e0a5d":  "code been used",
		"invalid code, hints: [ req_id: GEbaO6yFe-ihO5a ]": "invalid code",
		"invalid code hint: [abc123]":                      "invalid code",
		"system error":                                     "system error",
		"":                                                 "",
	} {
		for _, err := range []error{
			&wechat.APIError{API: wechat.APICode2Session, Code: 40029, Msg: msg},
			fmt.Errorf("exchanging: %w", &wechat.APIError{API: wechat.APICode2Session, Code: 40029, Msg: msg}),
		} {
			enc := zapcore.NewMapObjectEncoder()
			errorField(err).AddTo(enc)
			got, _ := enc.Fields["error"].(string)
			wantText := (&wechat.APIError{API: wechat.APICode2Session, Code: 40029, Msg: want}).Error()
			if _, wrapped := err.(*wechat.APIError); !wrapped {
				wantText = "exchanging: " + wantText
			}
			if got != wantText {
				t.Errorf("%q: logged %q, want %q", msg, got, wantText)
			}
		}
	}
	// Other errors are logged as zap.Error logs them.
	enc := zapcore.NewMapObjectEncoder()
	errorField(fmt.Errorf("redis: connection refused")).AddTo(enc)
	ref := zapcore.NewMapObjectEncoder()
	zap.Error(fmt.Errorf("redis: connection refused")).AddTo(ref)
	if enc.Fields["error"] != ref.Fields["error"] {
		t.Errorf("plain error logged as %v", enc.Fields["error"])
	}
}

// TestClassifyWeChatError pins the spec's error table: each kind of error
// of the wechat package, bare or wrapped, maps to one status and code.
func TestClassifyWeChatError(t *testing.T) {
	api := func(code int) error { return &wechat.APIError{API: wechat.APICode2Session, Code: code, Msg: "m"} }
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"invalid code 40029", api(40029), 401, codeInvalidCode},
		{"code used 40163", api(40163), 401, codeInvalidCode},
		{"missing code 41008", api(41008), 401, codeInvalidCode},
		{"remembered refusal", refusedCode{&wechat.APIError{API: wechat.APICode2Session, Code: 40029}}, 401, codeInvalidCode},
		{"wrapped invalid code", fmt.Errorf("login: %w", api(40163)), 401, codeInvalidCode},
		{"user blocked 40226", api(40226), 403, codeUserBlocked},
		{"rate limited 45011", api(45011), 429, codeRateLimited},
		{"timeout", fmt.Errorf("x: %w", wechat.ErrTimeout), 504, codeWeChatTimeout},
		{"unavailable", fmt.Errorf("x: %w", wechat.ErrUnavailable), 503, codeWeChatUnavailable},
		{"system busy -1", api(-1), 503, codeWeChatUnavailable},
		{"invalid input", fmt.Errorf("x: %w", wechat.ErrInvalidInput), 400, codeInvalidRequest},
		{"watermark", fmt.Errorf("x: %w", wechat.ErrWatermark), 400, codeWatermarkMismatch},
		{"decrypt", fmt.Errorf("x: %w", wechat.ErrDecrypt), 400, codeDecryptFailed},
		{"bad response", fmt.Errorf("x: %w", wechat.ErrBadResponse), 502, codeWeChatError},
		{"bad secret 40125", api(40125), 502, codeWeChatError},
		{"bad app id 40013", api(40013), 502, codeWeChatError},
		{"invalid access token 40001", api(40001), 502, codeWeChatError},
		{"unknown errcode", api(99999), 502, codeWeChatError},
		{"not a wechat error", errors.New("something else"), 502, codeWeChatError},
		{"context deadline", context.DeadlineExceeded, 502, codeWeChatError},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := classifyWeChatError(c.err)
			if f.status != c.status || f.code != c.code || f.message == "" {
				t.Fatalf("classifyWeChatError = %d %s %q, want %d %s", f.status, f.code, f.message, c.status, c.code)
			}
			if strings.Contains(f.message, "something else") || strings.Contains(f.message, "errcode") {
				t.Fatalf("the message quotes the error: %q", f.message)
			}
		})
	}
}

// TestClassifyPhoneCodeError: a phone code is answered like any WeChat
// error, except that an invalid one tells the user to tap the phone button
// again rather than to call wx.login.
func TestClassifyPhoneCodeError(t *testing.T) {
	api := func(code int) error { return &wechat.APIError{API: wechat.APIPhoneNumber, Code: code} }
	for _, c := range []struct {
		name    string
		err     error
		status  int
		code    string
		message string // a part of the message
	}{
		{"invalid code", api(40029), 401, codeInvalidCode, "tap the phone button again"},
		{"used code", api(40163), 401, codeInvalidCode, "tap the phone button again"},
		{"rate limited", api(45011), 429, codeRateLimited, "retry later"},
		{"timeout", wechat.ErrTimeout, 504, codeWeChatTimeout, "in time"},
		{"unknown", api(12345), 502, codeWeChatError, "unusable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := classifyPhoneCodeError(c.err)
			if f.status != c.status || f.code != c.code || !strings.Contains(f.message, c.message) {
				t.Fatalf("classifyPhoneCodeError = %d %s %q, want %d %s with %q", f.status, f.code, f.message, c.status, c.code, c.message)
			}
			if strings.Contains(f.message, "wx.login") {
				t.Fatalf("a phone code's answer sends the user to wx.login: %q", f.message)
			}
			if login := classifyWeChatError(c.err); login.status != f.status || login.code != f.code {
				t.Fatalf("phone %d %s, login %d %s: only the message may differ", f.status, f.code, login.status, login.code)
			}
		})
	}
}
