package memorystore

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// diskHealth is whether writes to the persist file fail (a full disk, a
// file size limit, an I/O error), for the log: one line when they start
// failing and one when a write succeeds again, not one per request. While
// the disk is full every change fails, and each is answered 503
// store_unavailable already; a line per failure would flood the log just
// when the disk has no room for it.
type diskHealth struct {
	down   atomic.Bool // read by every write that succeeds: the common case costs one load
	mu     sync.Mutex  // serializes the transitions and their log lines
	since  time.Time   // when writes started failing
	failed int64       // writes failed since then
}

// noteWrite records the outcome of a write to the persist file at path
// (a change's, or the background queue's), and logs a transition.
func (d *diskState) noteWrite(path string, err error) {
	d.health.note(d.s.logger.Load(), path, err,
		"persist file failing: changes are answered 503 until it can be written again",
		"persist file written again: changes are saved and answered again")
}

// noteFold records the outcome of a fold of the journal into the file.
// Changes go on being saved in the journal while it has room.
func (d *diskState) noteFold(path string, err error) {
	d.foldHealth.note(d.s.logger.Load(), path, err,
		"journal cannot be folded into the persist file: changes are kept in the journal while it has room",
		"journal folded into the persist file again")
}

func (h *diskHealth) note(logger *zap.Logger, path string, err error, failing, recovered string) {
	if err == nil && !h.down.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && !h.down.Load():
		h.down.Store(true)
		h.since, h.failed = time.Now(), 1
		logger.Error(failing, zap.String("file", path), zap.Error(err))
	case err != nil:
		h.failed++
	case h.down.Load():
		h.down.Store(false)
		logger.Info(recovered, zap.String("file", path), zap.Duration("failing_for", time.Since(h.since)),
			zap.Int64("failed_writes", h.failed))
	}
}
