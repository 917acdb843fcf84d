package memorystore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// What a journal record holds: the writes of one change, in the order the
// disk writer made them, each a put, a delete, or the deletion of every
// session of a user:
//
//	op (1 byte), bucket (1 byte), uvarint key length, key
//	[put: uvarint value length, value]
//
// Folding a record runs its writes in a bbolt transaction (boltSink), so
// that the keyed buckets end as if the change had been written there
// directly. A record replays the same way any number of times: every write
// sets a key to a value, or to nothing.

const (
	opPut            = 1
	opDelete         = 2
	opDeleteSessions = 3 // every session under a U key
)

// The buckets by the byte that names them in a record.
var journalBuckets = map[byte][]byte{'s': bucketSessions, 'u': bucketUsers, 'p': bucketPrevKeys}

// diskSink is where the disk writer's writes go: a bbolt transaction
// (boltSink) or the journal's record being made (journalSink).
type diskSink interface {
	put(bucket byte, k, v []byte) error
	del(bucket byte, k []byte) error
	// delSessions deletes every session under the U key u.
	delSessions(u []byte) error
	// sessionsUnder returns the keys of the sessions under u on disk,
	// folded or not.
	sessionsUnder(u []byte) ([][]byte, error)
}

// boltSink writes into a bbolt write transaction. bbolt keeps the key and
// value given to Put until the transaction commits: they must stay
// untouched until then.
type boltSink struct{ tx *bolt.Tx }

func (b boltSink) bucket(id byte) (*bolt.Bucket, error) {
	if bk := b.tx.Bucket(journalBuckets[id]); bk != nil {
		return bk, nil
	}
	return nil, fmt.Errorf("no bucket %q", id)
}

func (b boltSink) put(id byte, k, v []byte) error {
	bk, err := b.bucket(id)
	if err != nil {
		return err
	}
	return bk.Put(k, v)
}

func (b boltSink) del(id byte, k []byte) error {
	bk, err := b.bucket(id)
	if err != nil {
		return err
	}
	return bk.Delete(k)
}

func (b boltSink) delSessions(u []byte) error {
	keys, err := b.sessionsUnder(u)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.del('s', k); err != nil {
			return err
		}
	}
	return nil
}

func (b boltSink) sessionsUnder(u []byte) ([][]byte, error) {
	return sessionsUnder(b.tx, u), nil
}

// sessionsUnder lists the session keys under u in tx, copied.
func sessionsUnder(tx *bolt.Tx, u []byte) [][]byte {
	var keys [][]byte
	c := tx.Bucket(bucketSessions).Cursor()
	for k, _ := c.Seek(u); k != nil && bytes.HasPrefix(k, u); k, _ = c.Next() {
		if ku, _, ok := splitSessionKey(k); ok && bytes.Equal(ku, u) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	return keys
}

// journalSink encodes writes into the record the journal is making. It is
// used with j.mu held.
type journalSink struct {
	j  *journal
	db *bolt.DB
}

func (s journalSink) put(id byte, k, v []byte) error {
	s.j.scratch = appendOp(s.j.scratch, opPut, id, k)
	s.j.scratch = binary.AppendUvarint(s.j.scratch, uint64(len(v)))
	s.j.scratch = append(s.j.scratch, v...)
	return nil
}

func (s journalSink) del(id byte, k []byte) error {
	s.j.scratch = appendOp(s.j.scratch, opDelete, id, k)
	return nil
}

func (s journalSink) delSessions(u []byte) error {
	s.j.scratch = appendOp(s.j.scratch, opDeleteSessions, 's', u)
	return nil
}

// sessionsUnder reads both the persist file and the records not folded
// into it yet. It reads every unfolded record: only a revoke that a login
// of the same user raced needs it (writer.go).
func (s journalSink) sessionsUnder(u []byte) ([][]byte, error) {
	var keys [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error { keys = sessionsUnder(tx, u); return nil }); err != nil {
		return nil, err
	}
	for _, g := range s.j.unfolded() {
		err := scanRecords(g.buf, g.gen, func(payload []byte) error {
			return decodeOps(payload, func(op, id byte, k, _ []byte) error {
				if op != opDeleteSessions && id == 's' && bytes.HasPrefix(k, u) {
					if ku, _, ok := splitSessionKey(k); ok && bytes.Equal(ku, u) {
						keys = append(keys, bytes.Clone(k))
					}
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func appendOp(b []byte, op, id byte, k []byte) []byte {
	b = append(b, op, id)
	b = binary.AppendUvarint(b, uint64(len(k)))
	return append(b, k...)
}

var errBadRecord = errors.New("a journal record is malformed")

// decodeOps calls fn with each write of a record's payload.
func decodeOps(p []byte, fn func(op, id byte, k, v []byte) error) error {
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return nil, false
		}
		f := p[w : w+int(n)]
		p = p[w+int(n):]
		return f, true
	}
	for len(p) > 0 {
		if len(p) < 2 {
			return errBadRecord
		}
		op, id := p[0], p[1]
		p = p[2:]
		if journalBuckets[id] == nil {
			return errBadRecord
		}
		k, ok := field()
		if !ok {
			return errBadRecord
		}
		var v []byte
		switch op {
		case opPut:
			if v, ok = field(); !ok {
				return errBadRecord
			}
		case opDelete, opDeleteSessions:
		default:
			return errBadRecord
		}
		if err := fn(op, id, k, v); err != nil {
			return err
		}
	}
	return nil
}

// applyOps runs the writes of a record's payload in tx.
func applyOps(tx *bolt.Tx, payload []byte) error {
	sink := boltSink{tx}
	return decodeOps(payload, func(op, id byte, k, v []byte) error {
		switch op {
		case opPut:
			return sink.put(id, k, v)
		case opDelete:
			return sink.del(id, k)
		default:
			return sink.delSessions(k)
		}
	})
}

// scanRecords calls fn with the payload of each record of generation gen
// at the start of b, in order, skipping void ones, and stops at the first
// that is not one (see journal.go).
func scanRecords(b []byte, gen uint64, fn func(payload []byte) error) error {
	for len(b) >= recordHeaderSize {
		n := binary.BigEndian.Uint32(b)
		void := n&journalVoid != 0
		n &^= journalVoid
		if n == 0 && !void || int64(n) > int64(len(b)-recordHeaderSize) {
			return nil
		}
		payload := b[recordHeaderSize : recordHeaderSize+int(n)]
		g := binary.BigEndian.Uint64(b[8:])
		var gb [8]byte
		binary.BigEndian.PutUint64(gb[:], g)
		crc := crc32.Update(crc32.Update(0, crcTable, gb[:]), crcTable, payload)
		if g != gen || binary.BigEndian.Uint32(b[4:]) != crc {
			return nil
		}
		if !void {
			if err := fn(payload); err != nil {
				return err
			}
		}
		b = b[recordHeaderSize+int(n):]
	}
	return nil
}
