package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func adapt(t *testing.T, body string) (string, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	return string(out), err
}

func TestCaddyfileParsesEverySubdirective(t *testing.T) {
	h := new(Handler)
	d := caddyfile.NewTestDispenser(`wechat_auth {
		app_id       wx1234567890abcdef
		app_secret   {env.WECHAT_APP_SECRET}
		api_base     https://api.weixin.qq.com
		path_prefix  /auth
		session_ttl  24h
		timeout      3s
		mode         optional
		require_phone
		max_data_age 10m
		header_openid  X-User
		header_unionid X-Union
		header_phone   X-Phone
		header_country_code X-CC
		header_appid   X-App
		store memory {
			max_sessions 5000
		}
	}`)
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h)
	want := `{"app_id":"wx1234567890abcdef","app_secret":"{env.WECHAT_APP_SECRET}","api_base":"https://api.weixin.qq.com","path_prefix":"/auth","session_ttl":86400000000000,"timeout":3000000000,"mode":"optional","require_phone":true,"max_data_age":600000000000,"header_openid":"X-User","header_unionid":"X-Union","header_phone":"X-Phone","header_country_code":"X-CC","header_appid":"X-App","store":{"backend":"memory","max_sessions":5000}}`
	if string(got) != want {
		t.Fatalf("parsed:\n%s\nwant:\n%s", got, want)
	}
}

// The directive orders itself: no `order` option, and it runs before
// request_header, reverse_proxy, respond and file_server.
func TestDirectiveOrder(t *testing.T) {
	out, err := adapt(t, `:8080 {
	file_server
	reverse_proxy localhost:9
	respond "x"
	request_header X-A b
	wechat_auth {
		app_id wx1234567890abcdef
		app_secret s
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	pos := func(handler string) int {
		i := strings.Index(out, `"handler":"`+handler+`"`)
		if i < 0 {
			t.Fatalf("no %s in %s", handler, out)
		}
		return i
	}
	w := pos("wechat_auth")
	for _, later := range []string{"headers", "reverse_proxy", "static_response", "file_server"} {
		if pos(later) < w {
			t.Errorf("%s runs before wechat_auth", later)
		}
	}
}

func TestCaddyfileErrorsNameTheProblem(t *testing.T) {
	const app = "wechat_auth {\n\tapp_id wx1234567890abcdef\n\tapp_secret s\n"
	for _, c := range []struct{ body, want string }{
		{"wechat_auth {\n\tapp_secret s\n}", "app_id is required"},
		{"wechat_auth {\n\tapp_id wx1234567890abcdef\n}", "app_secret is required"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n}", `app_id "wx1" is not a mini program AppID`},
		{"wechat_auth {\n\tapp_id wx1234567890abcdeg\n\tapp_secret s\n}", "is not a mini program AppID"},
		{"wechat_auth {\n\tapp_id wx1 wx2\n\tapp_secret s\n}", "app_id takes one argument"},
		{app + "\tbogus 1\n}", `unrecognized wechat_auth subdirective "bogus"`},
		{app + "\ttimeout soon\n}", `timeout: "soon" is not a duration`},
		{app + "\ttimeout 2m\n}", "timeout must be between 100ms and 1m0s"},
		{app + "\tsession_ttl -1h\n}", "session_ttl must not be negative"},
		{app + "\tsession_ttl 0\n}", "session_ttl must be a positive duration"},
		{app + "\tsession_ttl 500us\n}", "session_ttl must be between 1m0s and 87600h0m0s"},
		{app + "\tsession_ttl 36500d\n}", "session_ttl must be between 1m0s and 87600h0m0s"},
		{app + "\tsession_key_grace 2h\n}", "session_key_grace must be between 1s and 1h0m0s, or 0 for off"},
		{app + "\tmax_data_age 1ms\n}", "max_data_age must be between"},
		{app + "\tmode maybe\n}", `mode must be "required" or "optional"`},
		{app + "\tpath_prefix wechat\n}", "path_prefix must be an absolute path"},
		{app + "\tapi_base http://\n}", `api_base "http://" must be an absolute http:// or https:// URL`},
		{app + "\tapi_base ftp://api.weixin.qq.com\n}", `api_base "ftp://api.weixin.qq.com" must be an absolute`},
		{app + "\tpath_prefix \"/we chat\"\n}", "path_prefix must be an absolute path"},
		{app + "\tstore nosuch\n}", `unknown store "nosuch": the stores in this build are memory, redis`},
		{app + "\tstore\n}", "store needs a backend: memory, redis"},
		{app + "\tstore memory {\n\t\tmax_sessions lots\n\t}\n}", "max_sessions"},
		{app + "\tstore redis {\n\t\tdb x\n\t}\n}", "db"},
		{app + "\trequire_phone yes\n}", "require_phone takes no arguments"},
		{app + "\theader_openid \"X User:Id\"\n}", `header_openid: "X User:Id" is not a valid header name`},
		{app + "\theader_phone Authorization\n}", `header_phone: "Authorization" collides with Authorization`},
		{app + "\theader_unionid x_wechat_openid\n}", `header_unionid: "x_wechat_openid" collides with header_openid`},
		{app + "\theader_appid X-Id\n\theader_phone x-id\n}", `header_appid: "X-Id" collides with header_phone`},
	} {
		_, err := adapt(t, ":8080 {\n"+c.body+"\n}")
		if err == nil {
			t.Errorf("no error for:\n%s", c.body)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("error %q should name %q and the file:line", err, c.want)
		}
	}
}

func TestCaddyfileLimits(t *testing.T) {
	for body, want := range map[string]string{
		"body_timeout 30s\n\trefused_code_limit 50 30s": `"body_timeout":30000000000,"refused_code_limit":50,"refused_code_window":30000000000`,
		"refused_code_limit 5":                          `"refused_code_limit":5}`,
		"refused_code_limit off":                        `"refused_code_limit":0}`,
	} {
		h := new(Handler)
		d := caddyfile.NewTestDispenser("wechat_auth {\n\tapp_id wx1234567890abcdef\n\tapp_secret s\n\t" + body + "\n}")
		if err := h.UnmarshalCaddyfile(d); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got, _ := json.Marshal(h); !strings.Contains(string(got), want) {
			t.Errorf("%s: parsed %s, want %s", body, got, want)
		}
	}
	const app = "wechat_auth {\n\tapp_id wx1234567890abcdef\n\tapp_secret s\n"
	for _, c := range []struct{ body, want string }{
		{"body_timeout 500ms", "body_timeout must be between 1s and 5m0s"},
		{"body_timeout 10m", "body_timeout must be between 1s and 5m0s"},
		{"body_timeout off", `body_timeout: "off" is not a duration`},
		{"refused_code_limit", "refused_code_limit needs a number"},
		{"refused_code_limit 0", "refused_code_limit must be at least 1; use off"},
		{"refused_code_limit -3", "refused_code_limit must be between 1 and 100000"},
		{"refused_code_limit many", `refused_code_limit: "many" is not a whole number`},
		{"refused_code_limit 20 soon", `refused_code_limit window: "soon" is not a duration`},
		{"refused_code_limit 20 10ms", "refused_code_limit window must be between 1s and 1h0m0s"},
		{"refused_code_limit 20 0", "refused_code_limit window must be a positive duration"},
		{"refused_code_limit 20 1m 3", `got another argument: "3"`},
		{"refused_code_limit off 1m", `got another argument: "1m"`},
	} {
		_, err := adapt(t, ":8080 {\n"+app+"\t"+c.body+"\n}\n}")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Caddyfile:") {
			t.Errorf("%s: error %v, want %q and the file:line", c.body, err, c.want)
		}
	}
}
