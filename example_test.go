package caddywechatauth

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The demo uses the dev mock, which the plugin itself does not import.
	_ "github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/wechatmock"
)

// TestExampleJSONMatchesCaddyfile keeps xcaddy.json what `caddy adapt
// --config Caddyfile.example` gives, so users of either see the same demo.
// Regenerate with: go run ./cmd/caddy adapt --config Caddyfile.example --pretty > xcaddy.json
func TestExampleJSONMatchesCaddyfile(t *testing.T) {
	caddyfile, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.String())
	}
	want, err := os.ReadFile("xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	var got, exp any
	if err := json.Unmarshal(adapted, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &exp); err != nil {
		t.Fatalf("xcaddy.json: %v", err)
	}
	if !reflect.DeepEqual(got, exp) {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, adapted, "", "\t")
		t.Fatalf("xcaddy.json differs from the adapted Caddyfile.example; it should be:\n%s", pretty.String())
	}
}
