package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

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
