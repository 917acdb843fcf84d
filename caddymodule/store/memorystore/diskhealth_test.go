package memorystore

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Writes that fail, from many goroutines at once, then succeed, then fail
// again: one line at each transition, none per write.
func TestDiskHealthLogsTransitions(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	s := newSharedStore("wx00000000d15c0001", 10, zap.New(core))
	full := errors.New("write sessions.db: file too large")
	burst := func(err error) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					s.disk.noteWrite("sessions.db", err)
				}
			}()
		}
		wg.Wait()
	}
	want := func(lines ...string) {
		t.Helper()
		all := logs.All()
		if len(all) != len(lines) {
			t.Fatalf("%d log lines, want %d: %v", len(all), len(lines), all)
		}
		for i, l := range all {
			if !strings.HasPrefix(l.Message, lines[i]) {
				t.Fatalf("line %d: %q, want %q...", i, l.Message, lines[i])
			}
		}
	}
	burst(nil)
	want()
	burst(full)
	want(diskFailingLine)
	if e := logs.All()[0]; e.Level != zapcore.ErrorLevel || e.ContextMap()["error"] != full.Error() {
		t.Fatalf("the failing line: %v %v", e.Level, e.ContextMap())
	}
	burst(nil)
	want(diskFailingLine, diskRecoveredLine)
	if n := logs.All()[1].ContextMap()["failed_writes"]; n != int64(400) {
		t.Fatalf("failed_writes = %v, want 400", n)
	}
	burst(full)
	burst(nil)
	want(diskFailingLine, diskRecoveredLine, diskFailingLine, diskRecoveredLine)
}
