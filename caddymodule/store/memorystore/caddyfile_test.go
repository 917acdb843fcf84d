package memorystore

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestMemoryStoreCaddyfile(t *testing.T) {
	var m MemoryStore
	d := caddyfile.NewTestDispenser(`memory {
		max_sessions 5000
		persist {env.HOME}/wechat.db
	}`)
	if err := m.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if m.MaxSessions != 5000 || m.Persist != "{env.HOME}/wechat.db" {
		t.Fatalf("parsed %+v", m)
	}
	js, _ := json.Marshal(&m)
	if string(js) != `{"max_sessions":5000,"persist":"{env.HOME}/wechat.db"}` {
		t.Fatalf("JSON %s", js)
	}
	var empty MemoryStore
	if err := empty.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`memory`)); err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(&empty); string(js) != `{}` {
		t.Fatalf("defaults JSON %s", js)
	}

	for input, want := range map[string]string{
		"memory {\n max_sessions lots\n}":                 "max_sessions",
		"memory {\n max_sessions 0\n}":                    "max_sessions",
		"memory {\n max_sessions\n}":                      "needs one argument",
		"memory {\n persist\n}":                           "needs one argument",
		"memory {\n persist a b\n}":                       "takes one argument",
		"memory {\n max_session 5\n}":                     "max_session",
		"memory extra":                                    "no arguments",
		"memory {\n max_sessions 5 6\n}":                  "takes one argument",
		"memory {\n max_sessions -1\n}":                   "max_sessions",
		"memory {\n bogus\n}":                             "bogus",
		"memory {\n persist /a\n bogus 1\n}":              "bogus",
		"memory {\n max_sessions 99999999999999999999\n}": "max_sessions",
	} {
		var m MemoryStore
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one mentioning %q", input, err, want)
		}
	}
}

// snapshot, the name persist had in early builds, is an unknown
// subdirective like any other, and the error points at persist; so is the
// JSON field.
func TestMemoryStoreSnapshotIsUnknown(t *testing.T) {
	for _, input := range []string{"memory {\n snapshot /var/lib/w.snap\n}", "memory {\n snapshot\n}"} {
		var m MemoryStore
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), "unknown memory store subdirective 'snapshot' (did you mean 'persist'?)") {
			t.Fatalf("%q: error %v, want one naming persist", input, err)
		}
	}
	var m MemoryStore
	if err := caddy.StrictUnmarshalJSON([]byte(`{"snapshot":"/var/lib/w.snap"}`), &m); err == nil {
		t.Fatal(`the JSON field "snapshot" was accepted`)
	}
}
