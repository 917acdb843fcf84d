package caddymodule

import (
	"testing"
	"time"
)

func TestStoreFailureLogOneLinePerIntervalPerOperation(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newStoreFailureLog()
	l.now = func() time.Time { return now }

	if ok, n := l.allow("lookup"); !ok || n != 0 {
		t.Fatalf("first lookup failure: logged %v, suppressed %d; want logged, 0", ok, n)
	}
	for i := 0; i < 500; i++ {
		if ok, _ := l.allow("lookup"); ok {
			t.Fatalf("failure %d within the interval was logged", i+2)
		}
	}
	// Another operation has its own first line.
	if ok, _ := l.allow("bind_phone"); !ok {
		t.Fatal("the first bind_phone failure was not logged")
	}
	now = now.Add(storeLogInterval)
	if ok, n := l.allow("lookup"); !ok || n != 500 {
		t.Fatalf("after the interval: logged %v, suppressed %d; want logged, 500", ok, n)
	}
	if ok, _ := l.allow("lookup"); ok {
		t.Fatal("the interval did not start again")
	}

	var unprovisioned *storeFailureLog
	if ok, _ := unprovisioned.allow("lookup"); !ok {
		t.Fatal("a Handler without Provision must log every failure")
	}
}
