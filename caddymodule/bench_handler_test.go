package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/redistest"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store/memorystore"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/wechat/wechattest"
)

// BenchmarkPassThrough measures an authenticated pass-through: bearer
// token -> SHA-256 -> store Lookup -> identity headers and placeholders ->
// next handler. Each iteration uses one of 4096 tokens spread over all
// sessions, so that at 1M sessions the look-ups miss the CPU caches as
// they would in production. The request carries the headers a mini
// program sends and a Caddy replacer, as Caddy's server would give it.
func BenchmarkPassThrough(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("sessions=%s", sizeName(n)), func(b *testing.B) {
			h, _ := benchHandler(b, n)
			benchPassThrough(b, h, fillSessions(b, h.store, n, 4096))
		})
	}
}

// BenchmarkPassThroughRedis is BenchmarkPassThrough with the Redis store
// (a real redis-server on loopback, 10k sessions), with the local cache
// on (the default, 5s) and off: beside BenchmarkPassThrough/sessions=1k
// it shows what the cache saves.
func BenchmarkPassThroughRedis(b *testing.B) {
	addr := redistest.Start(b).Addr()
	for _, c := range []struct{ name, cacheTTL string }{{"cache=on", "5s"}, {"cache=off", "0s"}} {
		b.Run(c.name, func(b *testing.B) {
			h, _ := benchHandlerWithStore(b, fmt.Sprintf(`{"backend":"redis","address":%q,"cache_ttl":%q}`, addr, c.cacheTTL))
			// Fewer tokens than the cache holds, so "on" measures hits.
			benchPassThrough(b, h, fillSessions(b, h.store, 10_000, 1024))
		})
	}
}

// benchPassThrough runs authenticated pass-throughs with tokens, cycling.
func benchPassThrough(b *testing.B, h *Handler, tokens []string) {
	b.Helper()
	auths := make([][]string, len(tokens))
	for i, t := range tokens {
		auths[i] = []string{"Bearer " + t}
	}
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/api/orders?page=1", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) MicroMessenger/8.0.47 NetType/WIFI")
	r.Header.Set("Referer", "https://servicewechat.com/wx000000000000de01/12/page-frame.html")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept-Encoding", "gzip,compress,br,deflate")
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := &discardWriter{h: make(http.Header)}
	base := make(map[string]bool, len(r.Header))
	for k := range r.Header {
		base[k] = true
	}
	// One request for warm-up and a sanity check.
	r.Header["Authorization"] = auths[0]
	if err := h.ServeHTTP(w, r, nopNext); err != nil {
		b.Fatal(err)
	}
	if r.Header.Get(DefaultHeaderOpenID) == "" || r.Header.Get("Authorization") != "" {
		b.Fatalf("not authenticated: %v", r.Header)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Back to the request as the client sent it: drop what
		// the last iteration set (no allocation), put the token on.
		for k := range r.Header {
			if !base[k] {
				delete(r.Header, k)
			}
		}
		r.Header["Authorization"] = auths[i&(len(auths)-1)]
		// Each pass-through appends its placeholders' provider to the
		// request's replacer; Caddy makes one replacer per request.
		// A new one every 256 keeps the list short at little cost.
		if i&255 == 0 {
			*repl = *caddy.NewReplacer()
		}
		_ = h.ServeHTTP(w, r, nopNext)
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// BenchmarkSessionHeap reports the heap held per live session at 1M
// sessions of 1M distinct users: live heap after a GC, with the store
// filled, minus the same before, divided by the sessions. ns/op is the
// time to create all of them; run it with -benchtime=1x.
func BenchmarkSessionHeap(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		h, _ := benchHandler(b, n)
		fillSessions(b, h.store, n, 1)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c, err := h.store.Count(context.Background()); err != nil || c != n {
			b.Fatalf("store holds %d sessions (%v), want %d", c, err, n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/session")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/1M")
		runtime.KeepAlive(h)
	}
}

// BenchmarkLogin measures POST /wechat/login, the WeChat exchange
// included: every iteration is a fresh code of one of 1000 users, so
// every one costs a real loopback HTTP round trip to the fake's
// jscode2session, a new token and a store write.
func BenchmarkLogin(b *testing.B) {
	h, _ := benchHandler(b, memorystore.DefaultMaxSessions)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"code":"u%d:%d"}`, i%1000, i)
		r := httptest.NewRequest(http.MethodPost, "http://gw.example/wechat/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nopNext); err != nil || w.Code != http.StatusOK {
			b.Fatalf("login: %d %s %v", w.Code, w.Body, err)
		}
	}
}

// benchLogin logs user in through the handler and returns the token.
func benchLogin(b *testing.B, h *Handler, code string) string {
	b.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://gw.example/wechat/login", strings.NewReader(`{"code":"`+code+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, nopNext); err != nil || w.Code != http.StatusOK {
		b.Fatalf("login: %d %s %v", w.Code, w.Body, err)
	}
	var res loginResponse
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		b.Fatal(err)
	}
	return res.Token
}

// benchSealedPost runs POST path with a payload sealed for user, as the
// mini program sends it, b.N times.
func benchSealedPost(b *testing.B, path string, seal func(*wechattest.Server) (string, string, error)) {
	h, fake := benchHandler(b, 1000)
	token := benchLogin(b, h, "bench")
	data, iv, err := seal(fake)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"encryptedData": data, "iv": iv})
	auth := "Bearer " + token
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "http://gw.example"+path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nopNext); err != nil || w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s %v", path, w.Code, w.Body, err)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	}
}

// BenchmarkPhoneLegacy measures the legacy getPhoneNumber form end to
// end: JSON body, token, AES-128-CBC with the user's session_key,
// PKCS#7, JSON, watermark, the phone binding in the store, the answer.
func BenchmarkPhoneLegacy(b *testing.B) {
	benchSealedPost(b, "/wechat/phone", func(f *wechattest.Server) (string, string, error) {
		return f.SealPhone("bench")
	})
}

// BenchmarkDecrypt measures POST /wechat/decrypt with the same sealed
// phone payload (the endpoint bench/run.sh drives with wrk).
func BenchmarkDecrypt(b *testing.B) {
	benchSealedPost(b, "/wechat/decrypt", func(f *wechattest.Server) (string, string, error) {
		return f.SealPhone("bench")
	})
}
