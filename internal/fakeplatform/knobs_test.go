package fakeplatform

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestKnobs(t *testing.T) {
	k := NewKnobs[string, string]()
	due := func(api string) (string, bool, bool, *httptest.ResponseRecorder) {
		w := httptest.NewRecorder()
		f, failed, done := k.Due(w, httptest.NewRequest(http.MethodPost, "/", nil), api, k.Arrive(api))
		return f, failed, done, w
	}
	k.FailNext("a", "boom", 2)
	k.RespondNext("a", 1, 502, "text/html", "<html>")
	if _, failed, done, w := due("a"); failed || !done || w.Code != 502 || w.Body.String() != "<html>" || w.Header().Get("Content-Type") != "text/html" {
		t.Fatalf("raw first: %v %v %d %q", failed, done, w.Code, w.Body)
	}
	for i := 0; i < 2; i++ {
		if f, failed, done, _ := due("a"); f != "boom" || !failed || done {
			t.Fatalf("failure %d: %q %v %v", i, f, failed, done)
		}
	}
	if _, failed, done, _ := due("a"); failed || done {
		t.Fatal("knobs outlived their count")
	}
	k.FailNext("b", "x", 3)
	k.FailNext("b", "", 0)
	if _, failed, _, _ := due("b"); failed {
		t.Fatal("n <= 0 does not cancel")
	}
	if k.Calls("a") != 4 || k.Calls("b") != 1 || k.Calls("c") != 0 {
		t.Errorf("calls %d %d", k.Calls("a"), k.Calls("b"))
	}
	// A client that goes away ends the delay, with nothing written.
	k.SetDelay("a", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	start := time.Now()
	if _, _, done := k.Due(w, httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx), "a", k.Arrive("a")); !done || time.Since(start) > 10*time.Second || w.Body.Len() != 0 {
		t.Errorf("a gone client: done=%v body %q", done, w.Body)
	}
}

func TestUsersRedeem(t *testing.T) {
	var us Users[struct{ n int }]
	if us.Find("alice") != nil {
		t.Fatal("a record out of nothing")
	}
	us.Get("alice").n = 7
	if us.Find("alice").n != 7 || us.Get("alice").n != 7 {
		t.Fatal("record lost")
	}
	if name, err := us.Redeem("alice:2"); name != "alice" || err != nil {
		t.Errorf("Redeem = %q, %v", name, err)
	}
	if _, err := us.Redeem("alice:2"); !errors.Is(err, ErrUsedCode) {
		t.Errorf("reuse: %v", err)
	}
	for _, code := range []string{"", "bad1", "a b", ":x"} {
		if _, err := us.Redeem(code); !errors.Is(err, ErrBadCode) {
			t.Errorf("Redeem(%q): %v", code, err)
		}
	}
}
