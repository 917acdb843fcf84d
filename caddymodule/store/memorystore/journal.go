package memorystore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// The journal: every change that must be on disk before it is answered is
// appended to it as one record, and answered once a single fdatasync
// covers it. The keyed buckets of the persist file (format.go) are brought
// up to date from the journal in the background (fold.go), many changes
// per bbolt transaction, and at every start before the file is loaded.
//
// Why: bbolt writes 2-3 random pages per login and syncs twice per
// transaction, and on this kind of disk each sync costs some 70 µs of the
// caller's CPU whatever it carries; a login storm was bound by them. Here
// a login costs one small write and its share of one sync per group.
//
// The file, at the persist path + "-journal", is made at its full size and
// filled with zeros when created, so that a write never allocates a block
// and its fdatasync flushes data only (no inode change to commit):
//
//	0     header of region 0 (journalHeaderSize bytes)
//	4096  header of region 1
//	8192  region 0 (regionSize bytes), then region 1
//
// Records are appended to one region (the active one) while the other is
// folded into bbolt and then free for reuse. A header names its
// journal's id (also kept in bbolt's meta bucket: a journal left beside
// another persist file is never replayed into it) and a generation, which
// grows with every switch of regions; bbolt's meta records the last
// generation folded. A record is
//
//	u32 length of the payload (journalVoid bit: nothing to replay)
//	u32 CRC-32C of the generation and the payload
//	u64 generation of its region
//	payload: the changes (journalops.go)
//
// and a region's records end at the first one whose length is zero or too
// long, whose CRC fails or whose generation is not the region's: the zeros
// of a new file, the records of an older generation in a reused region,
// or a record torn by a crash (never answered: its sync did not return).

const (
	journalHeaderSize = 4096
	journalMagic      = "cwa journal\n"
	journalVersion    = 1
	recordHeaderSize  = 16
	journalVoid       = 1 << 31

	// defaultRegionSize holds about 60,000 logins: seconds of a storm.
	// It is folded when half full: the more changes a fold carries, the
	// more of them share each page bbolt writes.
	defaultRegionSize = 16 << 20
)

var errJournalFull = errors.New("the journal is full: its changes cannot be folded into the persist file (disk full?)")

// journalPath is where the journal of the persist file at path lives.
func journalPath(path string) string { return path + "-journal" }

// journalRegion is one of the two halves of the journal.
type journalRegion struct {
	index   int
	gen     uint64
	base    int64  // the LSN (journal bytes appended since open) of buf[0]
	buf     []byte // the records appended, a copy of what is (or will be) on disk
	written int    // the bytes of buf written to the file
	header  []byte // a header waiting to be written; nil when it is
	free    bool   // holds nothing that bbolt lacks: it may be reused
}

// journal is an open journal file.
type journal struct {
	f          *os.File
	path       string
	id         [16]byte
	regionSize int

	mu       sync.Mutex
	regions  [2]*journalRegion
	active   int   // the region records are appended to
	frozen   int   // the region waiting for its fold, or -1
	appended int64 // the LSN past the last record
	synced   int64 // the LSN up to which everything is on disk
	round    *syncRound
	// voids are the LSN ranges of records a failed round turned void
	// (rounds.go), one per run of failed rounds; unanswered counts the
	// records whose writers have not asked about them yet. When it is
	// zero no one can ask about a voided record again, and voids is
	// emptied: it does not grow with every failure of a long life.
	voids      []voidRange
	unanswered int
	// datasync is fdatasync; a test puts in one that fails.
	datasync func(f *os.File, path string) error
	// roundRecords is records when the last round started; busy is set
	// when that round carried more than one: a storm, in which the next
	// round's leader waits a little for more.
	roundRecords int64
	busy         bool
	scratch      []byte // a record being encoded (held under mu)

	foldMu sync.Mutex // one fold at a time (fold.go)
	kick   func()     // asks for a fold soon: the active region is half full

	records atomic.Int64 // records appended (read by the benchmarks without mu)
	syncs   atomic.Int64 // sync rounds, for the benchmarks
}

// regionOffset is where region r's records start in the file.
func (j *journal) regionOffset(r int) int64 {
	return 2*journalHeaderSize + int64(r)*int64(j.regionSize)
}

// encodeHeader is the header of region r at generation gen.
func encodeHeader(id [16]byte, r int, gen uint64) []byte {
	h := make([]byte, 0, 48)
	h = append(h, journalMagic...)
	h = binary.BigEndian.AppendUint32(h, journalVersion)
	h = append(h, id[:]...)
	h = binary.BigEndian.AppendUint64(h, gen)
	h = binary.BigEndian.AppendUint32(h, uint32(r))
	return binary.BigEndian.AppendUint32(h, crc32.Checksum(h, crcTable))
}

// decodeHeader reads the header of region r; ok is false for anything
// but a header of journal id.
func decodeHeader(b []byte, id [16]byte, r int) (gen uint64, ok bool) {
	if len(b) < 48 || string(b[:12]) != journalMagic ||
		binary.BigEndian.Uint32(b[44:]) != crc32.Checksum(b[:44], crcTable) ||
		binary.BigEndian.Uint32(b[12:]) != journalVersion || [16]byte(b[16:32]) != id ||
		binary.BigEndian.Uint32(b[40:]) != uint32(r) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[32:]), true
}

// createJournal makes a new journal at path, of two regions of size
// bytes, its region 0 active at generation gen. A journal already there
// at that size (the last run's, replayed into its file) is taken over:
// its blocks are allocated already, and its records are of older
// generations, which no header names any more. Otherwise a new one is
// zero-filled and synced beside it and renamed into place, so that a
// crash leaves either the old journal or the new one.
func createJournal(path string, id [16]byte, size int, gen uint64) (*journal, error) {
	j := &journal{path: path, id: id, regionSize: size, frozen: -1, datasync: fdatasync}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == j.regionOffset(2) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		if err := writeHeaders(f, id, gen); err != nil {
			f.Close()
			return nil, err
		}
		j.f = f
	} else if j.f, err = newJournalFile(path, j.regionOffset(2), id, gen); err != nil {
		return nil, err
	}
	for r := range j.regions {
		j.regions[r] = &journalRegion{index: r, buf: make([]byte, 0, size), free: r == 1}
	}
	j.regions[0].gen = gen
	return j, nil
}

// writeHeaders makes region 0 active at generation gen and region 1
// empty, and syncs them.
func writeHeaders(f *os.File, id [16]byte, gen uint64) error {
	h := make([]byte, 2*journalHeaderSize)
	copy(h, encodeHeader(id, 0, gen))
	if _, err := f.WriteAt(h, 0); err != nil {
		return err
	}
	return f.Sync()
}

// newJournalFile writes a zero-filled journal of size bytes beside path,
// with its headers, and renames it into place.
func newJournalFile(path string, size int64, id [16]byte, gen uint64) (*os.File, error) {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return fail(err)
		}
	}
	if err := writeHeaders(f, id, gen); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	f.Close()
	syncDir(filepath.Dir(path))
	// Opened again under its name, for the errors that name it.
	return os.OpenFile(path, os.O_RDWR, 0)
}

// append adds one record, payload, to the active region, switching
// regions when it is full and the other is free, and returns the LSN past
// it. The caller holds j.mu.
func (j *journal) append(payload []byte) (int64, error) {
	n := recordHeaderSize + len(payload)
	if n > j.regionSize {
		return 0, fmt.Errorf("a change of %d bytes does not fit in the journal", n)
	}
	a := j.regions[j.active]
	if len(a.buf)+n > j.regionSize {
		if !j.switchRegions() {
			return 0, errJournalFull
		}
		a = j.regions[j.active]
	}
	a.buf = appendRecord(a.buf, a.gen, payload, 0)
	j.appended += int64(n)
	j.records.Add(1)
	return j.appended, nil
}

// pressed reports whether a fold should come before its time: a region
// waits for one, or the active region is half full.
func (j *journal) pressed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.frozen >= 0 || len(j.regions[j.active].buf) > j.regionSize/2
}

// appendRecord appends a record of generation gen to b.
func appendRecord(b []byte, gen uint64, payload []byte, flags uint32) []byte {
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	crc := crc32.Update(crc32.Update(0, crcTable, g[:]), crcTable, payload)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload))|flags)
	b = binary.BigEndian.AppendUint32(b, crc)
	b = append(b, g[:]...)
	return append(b, payload...)
}

// switchRegions makes the other region active, if it is free, and the
// active one frozen (waiting for its fold). The caller holds j.mu.
func (j *journal) switchRegions() bool {
	o := j.regions[1-j.active]
	if !o.free || j.frozen >= 0 {
		return false
	}
	cur := j.regions[j.active]
	o.gen = cur.gen + 1
	o.base = j.appended
	o.buf, o.written, o.free = o.buf[:0], 0, false
	o.header = encodeHeader(j.id, o.index, o.gen)
	j.frozen, j.active = cur.index, o.index
	return true
}
