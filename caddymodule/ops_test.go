package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

const adminBase = "http://localhost:2999"

func adminDo(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, adminBase+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetrics(t *testing.T) {
	a := startGateway(t, "")
	tok := a.login("mia")
	a.fake.FailNext(wechattest.APICode2Session, 40029, 1)
	a.postJSON("/wechat/login", "", map[string]string{"code": "mia:2"})
	a.upstreamHeaders(tok)
	a.upstreamHeaders(tok)
	a.do("GET", "/api/x", "", "", nil)

	_, body := adminDo(t, "GET", "/metrics")
	app := `app_id="` + a.appID + `"`
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

func TestAdminRevokeAndStats(t *testing.T) {
	a := startGateway(t, "")
	tok1 := a.login("nora")
	tok2 := a.login("nora:2")
	other := a.login("olga")
	openid := a.fake.OpenID("nora")

	st, body := adminDo(t, "GET", "/wechat_auth/stats?app_id="+a.appID)
	var stats struct {
		Apps []struct {
			AppID    string `json:"app_id"`
			Store    string `json:"store"`
			Sessions int    `json:"sessions"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(body), &stats); err != nil || st != 200 || len(stats.Apps) != 1 || stats.Apps[0].Sessions != 3 || stats.Apps[0].Store != "memory" {
		t.Fatalf("stats: %d %s", st, body)
	}
	if strings.Contains(body, openid) {
		t.Fatalf("stats name a user: %s", body)
	}

	st, body = adminDo(t, "DELETE", "/wechat_auth/users/"+openid)
	if st != 200 || !strings.Contains(body, `"revoked":2`) {
		t.Fatalf("revoke: %d %s", st, body)
	}
	for _, tok := range []string{tok1, tok2} {
		expectError(t, a.do("GET", "/api/x", tok, "", nil), 401, "unauthenticated")
	}
	if st, _ := a.upstreamHeaders(other); st != 200 {
		t.Fatalf("another user's session was revoked too: %d", st)
	}
	if st, _ := adminDo(t, "GET", "/wechat_auth/users/"+openid); st != 405 {
		t.Fatalf("GET on the revoke route: %d", st)
	}
	if st, _ := adminDo(t, "DELETE", "/wechat_auth/users/"); st != 400 {
		t.Fatalf("revoke without openid: %d", st)
	}
}
