package caddymodule

import (
	"fmt"
	"testing"
	"time"
)

// A valid check is believed for the TTL and no longer; forget drops it;
// the map never holds more than max entries.
func TestKeyChecks(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := newKeyChecks(time.Minute, 3)
	c.now = func() time.Time { return now }
	a := newKeyCheckID("oa", "key-a")
	if c.cached(a) {
		t.Fatal("cached before any check")
	}
	c.remember(a, now)
	now = now.Add(59 * time.Second)
	if !c.cached(a) {
		t.Fatal("not cached within the minute")
	}
	now = now.Add(time.Second)
	if c.cached(a) {
		t.Fatal("still cached after a minute")
	}
	if newKeyCheckID("oa", "key-b") == a || newKeyCheckID("oa\x00key-a", "") == a {
		t.Fatal("another key of the user, or another split, has the same id")
	}

	c.remember(a, now)
	c.forget(a)
	if c.cached(a) {
		t.Fatal("cached after forget")
	}

	// Full: expired entries go first, then any; the new one is kept.
	for i := range 3 {
		c.remember(newKeyCheckID(fmt.Sprint("o", i), "k"), now.Add(-2*time.Minute))
	}
	c.remember(a, now)
	if len(c.valid) != 1 || !c.cached(a) {
		t.Fatalf("after remembering into a full map of expired entries: %d entries", len(c.valid))
	}
	for i := range 10 {
		c.remember(newKeyCheckID(fmt.Sprint("p", i), "k"), now)
		if len(c.valid) > 3 {
			t.Fatalf("%d entries, max 3", len(c.valid))
		}
	}
	if !c.cached(newKeyCheckID("p9", "k")) {
		t.Fatal("the newest entry was dropped")
	}
}
