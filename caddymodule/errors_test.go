package caddymodule

import (
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat"
)

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
