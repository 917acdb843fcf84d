package gatewaytest

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll held a condition that never did")
	}
	Eventually(t, time.Second, "at once", func() bool { return true })
}
