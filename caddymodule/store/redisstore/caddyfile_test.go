package redisstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestRedisStoreCaddyfile(t *testing.T) {
	var r Config
	d := caddyfile.NewTestDispenser(`redis {
		address    redis.internal:6380
		username   gateway
		password   {env.REDIS_PASSWORD}
		db         3
		key_prefix myapp:
		tls
		cache_ttl  2s
		cache_size 5000
		timeout    500ms
	}`)
	if err := r.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Config{Address: Addresses{"redis.internal:6380"}, Username: "gateway", Password: "{env.REDIS_PASSWORD}",
		DB: 3, KeyPrefix: "myapp:", TLS: true, CacheTTL: durationPtr(2 * time.Second), CacheSize: 5000, Timeout: caddy.Duration(500 * time.Millisecond)}
	gotJS, _ := json.Marshal(&r)
	wantJS, _ := json.Marshal(&want)
	if string(gotJS) != string(wantJS) {
		t.Fatalf("parsed %s, want %s", gotJS, wantJS)
	}

	for input, wantJSON := range map[string]string{
		"redis {\n cache_ttl off\n}": `{"cache_ttl":0}`,
		"redis":                      `{}`,
		"redis {\n mode sentinel\n address s1:26379 s2:26379\n address s3:26379\n master_name mymaster\n sentinel_username watcher\n sentinel_password {env.SENTINEL_PASSWORD}\n}": `{"mode":"sentinel","address":["s1:26379","s2:26379","s3:26379"],"master_name":"mymaster","sentinel_username":"watcher","sentinel_password":"{env.SENTINEL_PASSWORD}"}`,
		"redis {\n mode cluster\n address n1:6379 n2:6379\n tls\n}": `{"mode":"cluster","address":["n1:6379","n2:6379"],"tls":true}`,
	} {
		var r Config
		if err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			t.Fatalf("%q: %v", input, err)
		}
		if js, _ := json.Marshal(&r); string(js) != wantJSON {
			t.Fatalf("%q: %s, want %s", input, js, wantJSON)
		}
	}

	for input, wantErr := range map[string]string{
		"redis {\n db x\n}":                                             "db",
		"redis {\n db -1\n}":                                            "db",
		"redis {\n cache_ttl soon\n}":                                   "cache_ttl",
		"redis {\n cache_size 0\n}":                                     "cache_size",
		"redis {\n cache_size many\n}":                                  "cache_size",
		"redis {\n timeout 0s\n}":                                       "timeout",
		"redis {\n timeout\n}":                                          "needs one argument",
		"redis {\n address\n}":                                          "address needs",
		"redis {\n address a:1 b:2\n}":                                  "standalone mode takes one address",
		"redis {\n mode clustered\n}":                                   "mode",
		"redis {\n mode\n}":                                             "needs one argument",
		"redis {\n mode cluster\n}":                                     "cluster mode needs",
		"redis {\n mode cluster\n address a:1\n db 2\n}":                "only database 0",
		"redis {\n mode sentinel\n address a:1\n}":                      "master_name",
		"redis {\n mode sentinel\n master_name m\n}":                    "sentinels' addresses",
		"redis {\n master_name m\n}":                                    "are for mode sentinel",
		"redis {\n mode cluster\n address a:1\n sentinel_password p\n}": "are for mode sentinel",
		"redis {\n tls yes\n}":                                          "no arguments",
		"redis {\n adress localhost\n}":                                 "adress",
		"redis extra":                                                   "no arguments",
	} {
		var r Config
		err := r.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, wantErr)
		}
	}

	// The JSON twin: one address may be a string; Validate checks what
	// the Caddyfile checks.
	var fromJSON Config
	if err := json.Unmarshal([]byte(`{"address":"one:6379"}`), &fromJSON); err != nil || len(fromJSON.Address) != 1 || fromJSON.Address[0] != "one:6379" {
		t.Fatalf("address as a string: %v, %v", fromJSON.Address, err)
	}
	if err := json.Unmarshal([]byte(`{"address":["a:1","b:2"]}`), &fromJSON); err != nil || len(fromJSON.Address) != 2 {
		t.Fatalf("address as a list: %v, %v", fromJSON.Address, err)
	}

	if _, err := caddy.GetModule("wechat_auth.stores.redis"); err != nil {
		t.Fatal(err)
	}
	ctx := caddy.Context{Context: context.Background()}
	for what, m := range map[string]*Config{
		"negative db":             {DB: -1},
		"negative cache_ttl":      {CacheTTL: durationPtr(-time.Second)},
		"negative cache_size":     {CacheSize: -1},
		"address without port":    {Address: Addresses{"no-port"}},
		"db in cluster mode":      {Mode: ModeCluster, Address: Addresses{"a:1"}, DB: 1},
		"unknown mode":            {Mode: "ring"},
		"two standalone servers":  {Address: Addresses{"a:1", "b:1"}},
		"sentinel without master": {Mode: ModeSentinel, Address: Addresses{"a:1"}},
		"a { in key_prefix":       {KeyPrefix: "app{:"},
		"a } in key_prefix":       {KeyPrefix: "app}:"},
	} {
		if err := m.Provision(ctx); err != nil {
			t.Fatalf("%s: Provision: %v", what, err)
		}
		if err := m.Validate(); err == nil {
			t.Errorf("%s accepted", what)
		}
	}
	t.Setenv("TEST_KEY_PREFIX", "app{x}:")
	m := &Config{KeyPrefix: "{env.TEST_KEY_PREFIX}"}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "key_prefix") {
		t.Fatalf("a placeholder giving a key_prefix with braces: %v", err)
	}
}
