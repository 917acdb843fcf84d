package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// validateJSON runs Caddy's own validation (load, provision, validate,
// clean up) of a config with one wechat_auth handler holding fields.
func validateJSON(t *testing.T, fields string) error {
	t.Helper()
	handler := `{"handler":"wechat_auth","app_id":"wx1234567890abcdef","app_secret":"s"` + fields + `}`
	raw := `{"apps":{"http":{"servers":{"gw":{"listen":["localhost:0"],"routes":[{"handle":[` + handler + `]}]}}}}}`
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// A JSON config (no Caddyfile to check it at
// adapt) is refused by Validate with the same words.
func TestJSONConfigValidate(t *testing.T) {
	if err := validateJSON(t, `,"session_ttl":"87600h","timeout":"1m","session_key_grace":0,"body_timeout":"5m","refused_code_limit":0,"max_data_age":"720h"`); err != nil {
		t.Fatalf("a config at the edges of every range: %v", err)
	}
	for _, c := range []struct{ fields, want string }{
		{`,"session_ttl":500000`, "session_ttl must be between 1m0s and 87600h0m0s"},
		{`,"session_ttl":"876000h"`, "session_ttl must be between 1m0s and 87600h0m0s"},
		{`,"session_ttl":"-1h"`, "session_ttl must not be negative"},
		{`,"timeout":"2m"`, "timeout must be between 100ms and 1m0s"},
		{`,"timeout":"1ms"`, "timeout must be between"},
		{`,"session_key_grace":"2h"`, "session_key_grace must be between 1s and 1h0m0s, or 0 for off"},
		{`,"max_data_age":"1ms"`, "max_data_age must be between 1s and 720h0m0s, or 0 for off"},
		{`,"body_timeout":"500ms"`, "body_timeout must be between 1s and 5m0s"},
		{`,"body_timeout":"1h"`, "body_timeout must be between 1s and 5m0s"},
		{`,"refused_code_limit":-1`, "refused_code_limit must be between 0 and 100000"},
		{`,"refused_code_window":"10ms"`, "refused_code_window must be between 1s and 1h0m0s"},
		{`,"mode":"maybe"`, `mode must be "required" or "optional"`},
		{`,"path_prefix":"wechat"`, "path_prefix must be an absolute path"},
		// api_base is checked at provision, once its placeholders are
		// resolved: every WeChat call would fail with it.
		{`,"api_base":"ftp://x"`, `api_base "ftp://x" must be an absolute http:// or https:// URL`},
		{`,"api_base":"http://"`, `api_base "http://" must be an absolute`},
		{`,"api_base":"{env.WECHAT_TEST_UNSET_BASE}/x"`, `api_base "/x" must be an absolute`},
		{`,"header_openid":"X User:Id"`, `header_openid: "X User:Id" is not a valid header name`},
		{`,"header_phone":"Authorization"`, `header_phone: "Authorization" collides with Authorization`},
		{`,"header_appid":"authorization"`, `header_appid: "authorization" collides with Authorization`},
		{`,"header_unionid":"x_wechat_openid"`, `header_unionid: "x_wechat_openid" collides with header_openid`},
		{`,"header_appid":"X-Id","header_phone":"x-id"`, `collides with`},
		{`,"header_country_code":""`, ""}, // empty is the default: fine
	} {
		err := validateJSON(t, c.fields)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.fields, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.fields, err, c.want)
		}
	}
	// app_id is checked at provision (a placeholder may hide it from
	// Validate): not wx + 16 hex digits is refused.
	for _, id := range []string{"wx1", "wx1234567890abcdeg", "xx1234567890abcdef", "wx1234567890abcdef0"} {
		err := validateJSON(t, `,"app_id":"`+id+`"`)
		if err == nil || !strings.Contains(err.Error(), "is not a mini program AppID") {
			t.Errorf("app_id %q: %v", id, err)
		}
	}
	// A literal secret with braces: the error quotes none of it.
	err := validateJSON(t, `,"app_secret":"ab{cd-piece}ef"`)
	if err == nil || strings.Contains(err.Error(), "cd-piece") || !strings.Contains(err.Error(), "app_secret holds a placeholder that is not known") {
		t.Errorf("app_secret with braces: %v", err)
	}
}
