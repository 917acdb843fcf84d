package memorystore

import "time"

// Sync rounds: the records appended to the journal reach the disk in
// rounds, one at a time, each one write and one fdatasync covering every
// record appended before it started. A caller is answered when a round
// that covers its record succeeds.
//
// A round that fails (an I/O error) leaves its records in doubt: part of
// their bytes may have reached the disk. Their callers are answered that
// their changes failed, and may have undone them in memory, so those
// records must never replay after a crash. The round therefore turns
// them into void records in the journal's copy and, before it answers
// anyone, writes the voids over them once more; a later round rewrites
// them again if that fails too. And a caller that comes to ask about its
// record only after the round that voided it (it appended just before the
// round started, then lost the processor) must hear that it failed, not
// that a later round made the void durable: j.voids remembers which
// records were voided, until every writer of a record has asked.

// syncRound is one write and fdatasync covering the records appended
// before it started.
type syncRound struct {
	target int64 // the LSN it makes durable; set when it starts writing
	done   chan struct{}
	err    error
}

// voidRange is the records a run of failed rounds voided: those whose
// LSN (the end of the record) is in (from, to].
type voidRange struct {
	from, to int64
	err      error // the first round's error
}

// write is a byte range of the file a round writes: a slice of a
// region's buffer (aliased: voiding it changes what a rewrite writes) or
// a header.
type write struct {
	b   []byte
	off int64
}

// roundMark is what a region had when a round started: a region switched
// meanwhile (a new generation) is not that round's to mark.
type roundMark struct {
	gen    uint64
	end    int
	header bool
}

// sync returns once everything up to lsn is on disk (records, or the
// voids a failed round put in their place), leading a round of writing
// and fdatasync if none in progress covers it. The error of the round
// that covered lsn, if it failed, is returned; a caller asking whether
// its own record is durable asks voided next.
func (j *journal) sync(lsn int64) error {
	for {
		j.mu.Lock()
		if j.synced >= lsn {
			j.mu.Unlock()
			return nil
		}
		if r := j.round; r != nil {
			j.mu.Unlock()
			<-r.done
			if r.err != nil && r.target >= lsn {
				return r.err
			}
			continue // covered, or the next round's to lead
		}
		r := &syncRound{done: make(chan struct{})}
		j.round = r
		gather := j.busy
		j.mu.Unlock()
		j.lead(r, gather)
		if r.err != nil && r.target >= lsn {
			return r.err
		}
	}
}

// voided returns the error of the round that voided the record ending at
// lsn, or nil if none did. The caller holds j.mu.
func (j *journal) voided(lsn int64) error {
	for i := len(j.voids) - 1; i >= 0 && j.voids[i].to >= lsn; i-- {
		if lsn > j.voids[i].from {
			return j.voids[i].err
		}
	}
	return nil
}

// gatherWait is how long the leader of a round waits for more records
// when the rounds before carried several: under a storm, the sync that
// costs the same CPU whatever it carries then carries twice or three
// times more. A lone change never waits.
const gatherWait = 500 * time.Microsecond

// lead runs round r: it writes every byte appended and not yet written
// (both regions', and a new region's header), then one fdatasync.
func (j *journal) lead(r *syncRound, gather bool) {
	if gather {
		time.Sleep(gatherWait)
	}
	j.mu.Lock()
	var writes []write
	var marks [2]roundMark
	for i, g := range j.regions {
		marks[i] = roundMark{g.gen, len(g.buf), g.header != nil}
		if g.header != nil {
			writes = append(writes, write{g.header, int64(g.index) * journalHeaderSize})
		}
		if len(g.buf) > g.written {
			writes = append(writes, write{g.buf[g.written:], j.regionOffset(g.index) + int64(g.written)})
		}
	}
	r.target = j.appended
	n := j.records.Load()
	j.busy = n-j.roundRecords > 1
	j.roundRecords = n
	j.mu.Unlock()

	err := j.writeOut(writes)
	written := err == nil
	if err != nil {
		j.mu.Lock()
		j.void(marks, r.target, err)
		j.mu.Unlock()
		// The same ranges again, voids now: on success nothing of the
		// failed records can replay, and the round is settled as one
		// that wrote them. No other round runs meanwhile (r is still
		// j.round), and appends only add past the marks, so nothing
		// else changes these bytes.
		written = j.writeOut(writes) == nil
	}
	j.mu.Lock()
	if written {
		j.settle(marks, r.target)
	}
	j.round = nil
	r.err = err
	j.mu.Unlock()
	close(r.done)
}

// writeOut writes ws and syncs the file.
func (j *journal) writeOut(ws []write) error {
	for _, w := range ws {
		if _, err := j.f.WriteAt(w.b, w.off); err != nil {
			return err
		}
	}
	err := j.datasync(j.f, j.path)
	j.syncs.Add(1)
	return err
}

// settle records that what a round marked is on disk, up to target. The
// caller holds j.mu.
func (j *journal) settle(marks [2]roundMark, target int64) {
	for i, g := range j.regions {
		if m := marks[i]; g.gen == m.gen {
			g.written = max(g.written, m.end)
			if m.header {
				g.header = nil
			}
		}
	}
	j.synced = max(j.synced, target)
}

// void turns the records a failed round wrote into void records (in the
// journal's copy; the next write puts them on disk) and remembers them,
// the LSNs (j.synced, target]. The caller holds j.mu.
func (j *journal) void(marks [2]roundMark, target int64, err error) {
	for i, g := range j.regions {
		if m := marks[i]; g.gen == m.gen && m.end > g.written {
			voidSpan(g, g.written, m.end)
		}
	}
	if n := len(j.voids); n > 0 && j.voids[n-1].from == j.synced {
		j.voids[n-1].to = max(j.voids[n-1].to, target) // the same run of failures
		return
	}
	j.voids = append(j.voids, voidRange{from: j.synced, to: target, err: err})
}

// voidSpan turns the records in g.buf[from:to] into one void record of
// the same length. The caller holds j.mu.
func voidSpan(g *journalRegion, from, to int) {
	payload := make([]byte, to-from-recordHeaderSize)
	rec := appendRecord(make([]byte, 0, to-from), g.gen, payload, journalVoid)
	copy(g.buf[from:to], rec)
}
