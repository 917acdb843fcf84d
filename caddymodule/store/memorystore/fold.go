package memorystore

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The journal's life beside its persist file: a change written to it,
// the fold of its records into bbolt, and at a start the replay of what a
// crash left unfolded. The file's layout is journal.go's.

// Meta keys: the journal's id, and the last generation folded.
var (
	metaJournal = []byte("journal")
	metaFolded  = []byte("folded")
)

// write appends the writes fn makes as one record and returns once it is
// on disk (at once when fn writes nothing). fn runs under the journal's
// lock, so that records are in the order their projections of memory
// were made (writer.go's rule).
func (j *journal) write(mem memView, db *bolt.DB, fn func(*diskWriter) error) error {
	end, err := j.add(mem, db, fn)
	if err != nil || end == 0 {
		return err
	}
	return j.await(end)
}

// add appends the writes fn makes as one record and returns the LSN past
// it (0: fn wrote nothing).
func (j *journal) add(mem memView, db *bolt.DB, fn func(*diskWriter) error) (int64, error) {
	j.mu.Lock()
	j.scratch = j.scratch[:0]
	err := safeWrite(fn, &diskWriter{mem: mem, sink: journalSink{j, db}})
	var end int64
	if err == nil && len(j.scratch) > 0 {
		end, err = j.append(j.scratch)
	}
	if end > 0 {
		j.unanswered++ // until its await
	}
	due := len(j.regions[j.active].buf) > j.regionSize/2 || err != nil
	j.mu.Unlock()
	if due && j.kick != nil {
		j.kick()
	}
	return end, err
}

// await returns once the record ending at end is on disk, or with the
// error of the round that voided it: a round can fail, and void it,
// between add and await (rounds.go). Every add of a record is followed by
// one await of it.
func (j *journal) await(end int64) error {
	err := j.sync(end)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil {
		err = j.voided(end)
	}
	// Records appended from now on end past every void range, so once
	// no writer is left to ask, the ranges can go.
	if j.unanswered--; j.unanswered == 0 {
		j.voids = nil
	}
	return err
}

// safeWrite runs fn, turning a panic into an error: the journal's lock
// must be released whatever happens.
func safeWrite(fn func(*diskWriter) error, w *diskWriter) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("memory store: writing the journal: %v", r)
		}
	}()
	return fn(w)
}

// unfolded returns the regions holding records bbolt lacks. The caller
// holds j.mu.
func (j *journal) unfolded() []*journalRegion {
	var rs []*journalRegion
	for _, g := range j.regions {
		if !g.free {
			rs = append(rs, g)
		}
	}
	return rs
}

// due reports whether a fold has work: a frozen region, or records in the
// active one.
func (j *journal) due() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.frozen >= 0 || len(j.regions[j.active].buf) > 0
}

// fold writes the records of the frozen region into db, in one
// transaction, freezing the active region first when none is frozen, and
// frees the region. Records appended meanwhile go to the other region.
func (j *journal) fold(db *bolt.DB) error {
	j.foldMu.Lock()
	defer j.foldMu.Unlock()
	j.mu.Lock()
	if j.frozen < 0 && (len(j.regions[j.active].buf) == 0 || !j.switchRegions()) {
		j.mu.Unlock()
		return nil
	}
	fr := j.regions[j.frozen]
	end := fr.base + int64(len(fr.buf))
	j.mu.Unlock()
	// Once all of it is written (or voided), nothing changes fr.buf
	// until it is free again.
	if err := j.sync(end); err != nil {
		return err
	}
	err := db.Update(func(tx *bolt.Tx) error {
		if err := scanRecords(fr.buf, fr.gen, func(p []byte) error { return applyOps(tx, p) }); err != nil {
			return err
		}
		return putFolded(tx, fr.gen)
	})
	if err != nil {
		return err
	}
	j.mu.Lock()
	fr.free, j.frozen = true, -1
	j.mu.Unlock()
	return nil
}

// foldAll folds both regions (Caddy stops, or the file is let go).
func (j *journal) foldAll(db *bolt.DB) error {
	return errors.Join(j.fold(db), j.fold(db))
}

// close closes the journal's file.
func (j *journal) close() error { return j.f.Close() }

func putFolded(tx *bolt.Tx, gen uint64) error {
	return tx.Bucket(bucketMeta).Put(metaFolded, binary.BigEndian.AppendUint64(nil, gen))
}

// unfoldedJournal is what the journal of a persist file holds that the
// file lacks: what a crash left unfolded.
type unfoldedJournal struct {
	id       [16]byte // the file's journal id
	next     uint64   // the generation for the next journal
	top      uint64   // the newest generation in payloads
	payloads [][]byte
}

// readUnfolded reads the journal of the persist file at path, for db,
// writing nothing to db. A journal that is not db's is set aside (aside:
// its new name).
func readUnfolded(path string, db *bolt.DB) (u unfoldedJournal, aside string, err error) {
	var folded uint64
	hasID := false
	err = safeView(db, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New("the meta bucket is missing")
		}
		if v := meta.Get(metaJournal); len(v) == len(u.id) {
			u.id, hasID = [16]byte(v), true
		}
		if v := meta.Get(metaFolded); len(v) == 8 {
			folded = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return u, "", err
	}
	if !hasID { // (a file of a build before the journal: none is its)
		if _, err := io.ReadFull(rand.Reader, u.id[:]); err != nil {
			return u, "", err
		}
	}
	jp := journalPath(path)
	var ours bool
	u.payloads, u.top, ours, err = readJournal(jp, u.id, folded)
	if err != nil {
		return u, "", err
	}
	if !ours {
		if aside, err = setAside(jp, "foreign"); err != nil {
			return u, "", err
		}
	}
	u.next = max(folded, u.top) + 1
	return u, aside, nil
}

// replay writes the unfolded records into db, in one transaction.
func (u *unfoldedJournal) replay(db *bolt.DB) error {
	err := safeUpdate(db, func(tx *bolt.Tx) error {
		for _, p := range u.payloads {
			if err := applyOps(tx, p); err != nil {
				return err
			}
		}
		return putFolded(tx, u.top)
	})
	if err != nil {
		return fmt.Errorf("replaying the journal: %w", err)
	}
	return nil
}

// startJournal gives db the journal id (if it has none yet: it must be
// on disk before the first record) and makes a new journal at generation
// gen for the persist file at path.
func startJournal(path string, db *bolt.DB, id [16]byte, gen uint64, regionSize int) (*journal, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaJournal); len(v) == len(id) && [16]byte(v) == id {
			return nil
		}
		return meta.Put(metaJournal, bytes.Clone(id[:]))
	})
	if err != nil {
		return nil, err
	}
	return createJournal(journalPath(path), id, regionSize, gen)
}

// readJournal returns the payloads of the records in the journal at jp
// that db (journal id, last generation folded) lacks, in order, and the
// newest generation among them. ours is false when there is a file but
// not a journal of id; a missing file is ours, and empty.
func readJournal(jp string, id [16]byte, folded uint64) (payloads [][]byte, top uint64, ours bool, err error) {
	f, err := os.Open(jp)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, true, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, false, err
	}
	regionSize := (fi.Size() - 2*journalHeaderSize) / 2
	type region struct {
		r   int
		gen uint64
	}
	var todo []region
	for r := range 2 {
		h := make([]byte, 48)
		if _, err := f.ReadAt(h, int64(r)*journalHeaderSize); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, false, err
		}
		gen, ok := decodeHeader(h, id, r)
		ours = ours || ok
		if ok && gen > folded && regionSize > 0 {
			todo = append(todo, region{r, gen})
		}
	}
	if !ours {
		return nil, 0, false, nil
	}
	slices.SortFunc(todo, func(a, b region) int { return cmp.Compare(a.gen, b.gen) })
	for _, g := range todo {
		buf := make([]byte, regionSize)
		if _, err := f.ReadAt(buf, 2*journalHeaderSize+int64(g.r)*regionSize); err != nil {
			return nil, 0, false, err
		}
		err := scanRecords(buf, g.gen, func(p []byte) error {
			payloads = append(payloads, p)
			return decodeOps(p, func(byte, byte, []byte, []byte) error { return nil })
		})
		if err != nil {
			return nil, 0, false, fmt.Errorf("the journal: %w", err)
		}
		top = g.gen
	}
	return payloads, top, true, nil
}
