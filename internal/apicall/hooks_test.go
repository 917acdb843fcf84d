package apicall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Encode runs once per attempt and Decode judges each answer: a busy
// answer is retried with a body built afresh, and the observer sees what
// Decode said.
func TestEncodeDecodeHooks(t *testing.T) {
	var mu sync.Mutex
	var bodies, ctypes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, ctypes = append(bodies, string(b)), append(ctypes, r.Header.Get("Content-Type"))
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "not json")
	}))
	defer srv.Close()
	var seen []error
	c := New(Config{Prefix: "x", Kinds: kinds, BaseURL: srv.URL, Timeout: 5 * time.Second,
		Observe: func(_ string, _ time.Duration, err error) { seen = append(seen, err) }})
	busy := errors.New("busy")
	n := 0
	err := c.Do(context.Background(), Request{API: "a", Method: http.MethodPost, Path: "/",
		Encode: func() ([]byte, string, error) {
			n++
			return []byte(fmt.Sprintf("attempt=%d", n)), "text/x-test", nil
		},
		Decode: func(status int, _ string, body []byte) error {
			if status != http.StatusTeapot || string(body) != "not json" {
				t.Errorf("Decode got %d %q", status, body)
			}
			if n == 1 {
				return busy
			}
			return nil
		},
		Busy: func(err error) bool { return errors.Is(err, busy) },
	}, nil)
	if err != nil || n != 2 {
		t.Fatalf("Do = %v after %d encodings", err, n)
	}
	if strings.Join(bodies, ",") != "attempt=1,attempt=2" || ctypes[0] != "text/x-test" {
		t.Errorf("sent %q with %q", bodies, ctypes)
	}
	if len(seen) != 2 || seen[0] != busy || seen[1] != nil {
		t.Errorf("observer saw %v", seen)
	}
	encErr := errors.New("cannot sign")
	if err := c.Do(context.Background(), Request{API: "a", Method: http.MethodPost, Path: "/",
		Encode: func() ([]byte, string, error) { return nil, "", encErr }}, nil); err != encErr {
		t.Errorf("an Encode error: %v", err)
	}
}

func TestCheckAndExtraKinds(t *testing.T) {
	c := New(Config{Prefix: "x", Kinds: kinds, BaseURL: "ftp://h", Timeout: time.Second})
	if err := c.Check("a"); !errors.Is(err, kinds.InvalidInput) || !strings.HasPrefix(err.Error(), "x: a: invalid input: ") {
		t.Errorf("Check = %v", err)
	}
	sig := errors.New("x: sign does not verify")
	e := NewError("x", "a", kinds.BadResponse, "bad sign", sig)
	if !errors.Is(e, kinds.BadResponse) || !errors.Is(e, sig) || e.Error() != "x: a: unusable response: bad sign" {
		t.Errorf("NewError with an extra kind = %v", e)
	}
	for code, want := range map[string]string{"": "empty code", strings.Repeat("a", MaxCode+1): "code longer than 1024 bytes",
		"a b\x00": "", strings.Repeat("a", MaxCode): ""} {
		if got := CheckCodeSize(code); got != want {
			t.Errorf("CheckCodeSize(%.10q) = %q", code, got)
		}
	}
}

type failingTransport struct{ msg string }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New(f.msg)
}

// CleanCauses keeps a transport error's cause to one clipped line; the
// secret goes either way.
func TestCleanCauses(t *testing.T) {
	msg := "dial failed\nsecret: sekret123\x1b[31m" + strings.Repeat("x", 400)
	for _, clean := range []bool{false, true} {
		c := New(Config{Prefix: "x", Kinds: kinds, BaseURL: "http://h", Timeout: time.Second, Secret: "sekret123",
			CleanCauses: clean, HTTPClient: &http.Client{Transport: failingTransport{msg}}})
		err := c.Do(context.Background(), Request{API: "a", Method: http.MethodGet, Path: "/", Status: func([]byte) error { return nil }}, new(any))
		if !errors.Is(err, kinds.Unavailable) || strings.Contains(err.Error(), "sekret123") {
			t.Fatalf("clean=%v: %v", clean, err)
		}
		if got := strings.ContainsAny(err.Error(), "\n\x1b") || len(err.Error()) > 400; got == clean {
			t.Errorf("clean=%v: %q", clean, err)
		}
	}
}
