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
		app_id wx1
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
	for _, c := range []struct{ body, want string }{
		{"wechat_auth {\n\tapp_secret s\n}", "app_id is required"},
		{"wechat_auth {\n\tapp_id wx1\n}", "app_secret is required"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tbogus 1\n}", `unrecognized wechat_auth subdirective "bogus"`},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\ttimeout soon\n}", `timeout: bad duration "soon"`},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tsession_ttl -1h\n}", "session_ttl must be a positive duration"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tmode maybe\n}", `mode must be "required" or "optional"`},
		{"wechat_auth {\n\tapp_id wx1 wx2\n\tapp_secret s\n}", "app_id takes one argument"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tpath_prefix wechat\n}", "path_prefix must start with /"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tstore nosuch\n}", "wechat_auth.stores.nosuch"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tstore memory {\n\t\tmax_sessions lots\n\t}\n}", "max_sessions"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\tstore redis {\n\t\tdb x\n\t}\n}", "db"},
		{"wechat_auth {\n\tapp_id wx1\n\tapp_secret s\n\trequire_phone yes\n}", "require_phone takes no arguments"},
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
