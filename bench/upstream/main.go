// Command upstream is the application server of the benchmark (bench/run.sh):
// a tiny HTTP server that answers every request with a small fixed JSON
// body, and the auth endpoint that the forward_auth site asks on every
// request.
//
// The auth endpoint does the same work wechat_auth does for a request:
// it takes the bearer token, hashes it (SHA-256) and looks the hash up in
// memory, then answers 200 with the user in X-User-Id (copied upstream by
// forward_auth's copy_headers) or 401. So forward_auth is measured with a
// fast, in-memory auth service on the other core: what it costs is the
// extra HTTP round trip, not a slow auth server.
//
// Sessions are registered by the benchmark's token helper:
// POST /_bench/sessions with the body "<token> <user>".
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
)

var body = []byte(`{"ok":true,"items":[1,2,3],"message":"hello from the upstream"}` + "\n")

type sessions struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]string
}

func (s *sessions) auth(w http.ResponseWriter, r *http.Request) {
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || !strings.EqualFold(a[:len(prefix)], prefix) {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	h := sha256.Sum256([]byte(a[len(prefix):]))
	s.mu.RLock()
	user, ok := s.m[h]
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-User-Id", user)
	w.WriteHeader(http.StatusOK)
}

func (s *sessions) register(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	token, user, ok := strings.Cut(string(bytes.TrimSpace(b)), " ")
	if !ok || token == "" || user == "" {
		http.Error(w, `body: "<token> <user>"`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.m[sha256.Sum256([]byte(token))] = user
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	flag.Parse()
	s := &sessions{m: map[[sha256.Size]byte]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/auth", s.auth)
	mux.HandleFunc("/_bench/sessions", s.register)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	log.Printf("upstream listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
