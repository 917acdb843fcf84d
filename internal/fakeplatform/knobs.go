package fakeplatform

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"
)

// Knobs are the per-API test knobs of a fake with several APIs
// (baidutest, alipaytest): a failure of type F or a raw answer for the
// next n calls of an API, a delay, and a call counter. A queued knob is
// one entry with a count; setting it again replaces it. The zero value is
// not usable: see NewKnobs. Knobs are safe for concurrent use.
type Knobs[A comparable, F any] struct {
	mu     sync.Mutex
	fails  map[A]queued[F]
	raws   map[A]queued[Raw]
	delays map[A]time.Duration
	calls  map[A]int
}

// Raw is an answer given exactly as set by RespondNext.
type Raw struct {
	Status            int
	ContentType, Body string
}

type queued[T any] struct {
	v T
	n int
}

// NewKnobs returns Knobs with nothing set.
func NewKnobs[A comparable, F any]() *Knobs[A, F] {
	return &Knobs[A, F]{fails: map[A]queued[F]{}, raws: map[A]queued[Raw]{},
		delays: map[A]time.Duration{}, calls: map[A]int{}}
}

// FailNext makes the next n calls of api fail with f. n <= 0 cancels it.
func (k *Knobs[A, F]) FailNext(api A, f F, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n <= 0 {
		delete(k.fails, api)
		return
	}
	k.fails[api] = queued[F]{f, n}
}

// RespondNext makes the next n calls of api answer with exactly status,
// Content-Type contentType and body. n <= 0 cancels it. It is served
// before a FailNext of the same api.
func (k *Knobs[A, F]) RespondNext(api A, n int, status int, contentType, body string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n <= 0 {
		delete(k.raws, api)
		return
	}
	k.raws[api] = queued[Raw]{Raw{status, contentType, body}, n}
}

// SetDelay makes every call of api wait d before answering (0: none).
func (k *Knobs[A, F]) SetDelay(api A, d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.delays[api] = d
}

// Calls returns how many requests api has received, failed ones
// included.
func (k *Knobs[A, F]) Calls(api A) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[api]
}

// Arrive counts a call of api and returns the delay it is to wait.
func (k *Knobs[A, F]) Arrive(api A) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls[api]++
	return k.delays[api]
}

// Due waits delay (done, with nothing written, if the client goes away
// first), then takes what is due for api: a raw answer, written to w
// (done), or a failure (failed). Neither: the fake answers as usual.
func (k *Knobs[A, F]) Due(w http.ResponseWriter, r *http.Request, api A, delay time.Duration) (f F, failed, done bool) {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return f, false, true
		case <-t.C:
		}
	}
	k.mu.Lock()
	raw, hasRaw := take(k.raws, api)
	if !hasRaw {
		f, failed = take(k.fails, api)
	}
	k.mu.Unlock()
	if hasRaw {
		w.Header().Set("Content-Type", raw.ContentType)
		w.WriteHeader(raw.Status)
		_, _ = io.WriteString(w, raw.Body)
		return f, false, true
	}
	return f, failed, false
}

// take uses up one of the calls the entry of api in m is for.
func take[A comparable, T any](m map[A]queued[T], api A) (T, bool) {
	q, ok := m[api]
	if !ok {
		return q.v, false
	}
	if q.n--; q.n <= 0 {
		delete(m, api)
	} else {
		m[api] = q
	}
	return q.v, true
}

// ReadBody reads a request body of at most 64 KiB, or answers 413.
// Reading it first matters: net/http notices a client that went away
// only once the body has been consumed. r.Body is left readable again.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}
