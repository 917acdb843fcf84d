package memorystore

import (
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Writes follow one rule: a write puts on disk what memory holds for a key
// at the moment of the write (or deletes the key when memory has none),
// under the journal's lock (or inside bbolt's write transaction). Writes
// are made one at a time, so whatever order two changes reach the disk
// in, the last one written reads the newest state: the file never keeps a
// state that memory has left behind. That makes every write idempotent
// and lets removals that need no answer (expiry, the session limit, a
// user's last session gone) be queued and written in the background
// without racing a login of the same user.
//
// The writer reads memory only through the store's read methods
// (memview.go), never its fields.

// diskWriter writes records, each the projection of what memory holds now
// for its key, to a sink: the journal (every change, journal.go) or a
// bbolt transaction (the dump of a new file, the fold).
//
// bbolt keeps the key and value given to Put until the transaction
// commits, so each put gets slices of its own.
type diskWriter struct {
	mem  memView
	sink diskSink
}

func newDiskWriter(s *sharedStore, tx *bolt.Tx) *diskWriter {
	return &diskWriter{mem: s, sink: boltSink{tx}}
}

// bulk makes the buckets of a bbolt sink fill their pages (keys are
// written in order).
func (w *diskWriter) bulk() {
	if b, ok := w.sink.(boltSink); ok {
		for _, name := range [][]byte{bucketSessions, bucketUsers, bucketPrevKeys} {
			b.tx.Bucket(name).FillPercent = 0.95
		}
	}
}

// session writes the session th of openid as memory has it, or deletes it.
func (w *diskWriter) session(openid string, th store.TokenHash) error {
	return w.sessionAt(sessionKey(openid, th[:]))
}

// sessionAt is session, given the key.
func (w *diskWriter) sessionAt(k []byte) error {
	u, th, ok := splitSessionKey(k)
	if !ok {
		return nil // (never made by us)
	}
	owner, exp, live := w.mem.liveSession(th)
	if !live || owner.openID() != string(u[1:]) { // gone, expired, revoked or now someone else's
		return w.sink.del('s', k)
	}
	return w.sink.put('s', k, sessionValue(k, exp))
}

// user writes the record of openid as memory has it. When memory has none
// (its last session gone, or revoked) the record goes, with its previous
// key and all its sessions: memory holds none of them live, and a login
// made after this write is written after it.
func (w *diskWriter) user(openid string) error {
	_, err := w.userRecord(openid)
	return err
}

// userRecord is user, and reports whether memory has a record of openid.
func (w *diskWriter) userRecord(openid string) (bool, error) {
	p := w.mem.userOf(openid)
	k := userKey(openid)
	if p == nil {
		if err := w.sink.del('u', k); err != nil {
			return false, err
		}
		return false, errors.Join(w.sink.delSessions(k), w.prevKey(openid))
	}
	return true, w.sink.put('u', k, userValue(k, p))
}

// revoked writes a revoke of openid: its record as memory has it (gone, or
// a login made since), and none of the sessions it had.
func (w *diskWriter) revoked(openid string) error {
	has, err := w.userRecord(openid)
	if err != nil || !has {
		return err // (without a record, userRecord dropped its sessions)
	}
	return w.deadSessions(openid)
}

// deadSessions deletes every session of openid that memory does not hold
// as live: after a revoke, all it had; a login made after the revoke
// stays. (Only a revoke that a login of the same user raced comes here,
// so the journal may read all it holds to find them.)
func (w *diskWriter) deadSessions(openid string) error {
	keys, err := w.sink.sessionsUnder(userKey(openid))
	if err != nil {
		return err
	}
	for _, sk := range keys {
		if _, th, ok := splitSessionKey(sk); ok {
			if owner, _, live := w.mem.liveSession(th); live && owner.openID() == openid {
				continue
			}
		}
		if err := w.sink.del('s', sk); err != nil {
			return err
		}
	}
	return nil
}

// prevKey writes the previous session key of openid as memory has it, or
// deletes it.
func (w *diskWriter) prevKey(openid string) error {
	k := userKey(openid)
	key, exp, ok := w.mem.prevKeyOf(openid)
	if !ok {
		return w.sink.del('p', k)
	}
	return w.sink.put('p', k, prevKeyValue(k, key, exp))
}
