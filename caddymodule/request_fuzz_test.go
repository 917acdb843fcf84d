package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies and content types to the
// request decoder of every endpoint body. Whatever comes in, the decoder
// either fills the struct or answers with one of our JSON errors (400,
// 413, 415): never a panic, never another status, never an echo of the
// input.
//
//	go test -run '^$' -fuzz FuzzDecodeRequest -fuzztime 60s ./caddymodule/
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []struct{ ctype, body string }{
		{"application/json", `{"code":"alice"}`},
		{"application/json; charset=utf-8", `{"encryptedData":"AAAA","iv":"BBBB"}`},
		{"application/json", `{"code":1}`},
		{"application/json", `[]`},
		{"application/json", `{"code":"a"} {"code":"b"}`},
		{"application/json", `{"code":"\u0000"}`},
		{"text/plain", `{"code":"alice"}`},
		{"", ``},
		{"application/json", strings.Repeat("[", 100)},
	} {
		f.Add(seed.ctype, seed.body)
	}
	f.Fuzz(func(t *testing.T, ctype, body string) {
		for _, target := range []any{new(loginRequest), new(phoneRequest), new(decryptRequest)} {
			r := httptest.NewRequest(http.MethodPost, "/wechat/login", strings.NewReader(body))
			r.Header.Set("Content-Type", ctype)
			w := httptest.NewRecorder()
			if decodeJSONBody(w, r, target) {
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Fatalf("decoded, yet answered %d %q", w.Code, w.Body.String())
				}
				continue
			}
			switch w.Code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("status %d for %q %q", w.Code, ctype, body)
			}
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("not our JSON error: %q", w.Body.String())
			}
			// Only our own sentences: nothing of the input comes back.
			switch e.Message {
			case "the request body is larger than 16 KiB",
				"send Content-Type: application/json",
				"could not read the request body",
				"the body must be one JSON object of the documented shape":
			default:
				t.Fatalf("unexpected message %q", e.Message)
			}
		}
	})
}
