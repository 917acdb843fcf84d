package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

func TestMetrics(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("mia")
	a.fake.FailNext(wechattest.APICode2Session, 40029, 1)
	a.postJSON("/wechat/login", "", map[string]string{"code": "mia:2"})
	a.upstreamHeaders(tok)
	a.upstreamHeaders(tok)
	a.do("GET", "/api/x", "", "", nil)

	_, body := adminDo(t, "GET", "/metrics")
	app := `app_id="` + a.appID + `",platform="wechat"`
	for _, want := range []string{
		`caddy_wechat_auth_logins_total{` + app + `,result="ok"} 1`,
		`caddy_wechat_auth_logins_total{` + app + `,result="invalid_code"} 1`,
		`caddy_wechat_auth_requests_total{` + app + `,result="authorized"} 2`,
		`caddy_wechat_auth_requests_total{` + app + `,result="unauthenticated"} 1`,
		`caddy_wechat_auth_api_requests_total{api="jscode2session",` + app + `,result="ok"} 1`,
		`caddy_wechat_auth_api_requests_total{api="jscode2session",` + app + `,result="errcode_40029"} 1`,
		`caddy_wechat_auth_api_request_duration_seconds_count{api="jscode2session",` + app + `} 2`,
		`caddy_wechat_auth_sessions{` + app + `} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, a.fake.OpenID("mia")) || strings.Contains(body, tok) {
		t.Errorf("metrics hold an openid or a token")
	}
}
