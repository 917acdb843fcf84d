package gatewaytest

import (
	"testing"
	"time"
)

// Poll checks cond every 10ms until it holds (true) or within has passed
// (false).
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Eventually polls cond until it holds, failing the test with what when
// it does not within the given time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("%s: not within %v", what, within)
	}
}
