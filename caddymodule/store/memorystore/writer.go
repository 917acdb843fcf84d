package memorystore

import (
	"bytes"
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Writes follow one rule: a write puts on disk what memory holds for a key
// at the moment of the write (or deletes the key when memory has none),
// inside bbolt's write transaction. Transactions run one at a time, so
// whatever order two changes reach the disk in, the last one written
// reads the newest state: the file never keeps a state that memory has
// left behind. That makes every write idempotent (bbolt may run a batched
// function twice) and lets removals that need no answer (expiry, the
// session limit, a user's last session gone) be queued and written in the
// background without racing a login of the same user.
//
// The writer reads memory only through the store's read methods
// (memview.go), never its fields.

// diskWriter writes records inside one transaction, each the projection of
// what memory holds now for its key.
//
// bbolt keeps the key and value given to Put until the transaction
// commits, so each Put gets slices of its own.
type diskWriter struct {
	mem                       memView
	sessions, users, prevKeys *bolt.Bucket
}

func newDiskWriter(s *sharedStore, tx *bolt.Tx) *diskWriter {
	return &diskWriter{
		mem:      s,
		sessions: tx.Bucket(bucketSessions),
		users:    tx.Bucket(bucketUsers),
		prevKeys: tx.Bucket(bucketPrevKeys),
	}
}

// bulk makes the buckets fill their pages (keys are written in order).
func (w *diskWriter) bulk() {
	for _, b := range []*bolt.Bucket{w.sessions, w.users, w.prevKeys} {
		b.FillPercent = 0.95
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
		return w.sessions.Delete(k)
	}
	return w.sessions.Put(k, sessionValue(k, exp))
}

// user writes the record of openid as memory has it. When memory has none
// (its last session gone, or revoked) the record goes, with its previous
// key and its sessions that memory does not hold as live.
func (w *diskWriter) user(openid string) error {
	_, err := w.userRecord(openid)
	return err
}

// userRecord is user, and reports whether memory has a record of openid.
func (w *diskWriter) userRecord(openid string) (bool, error) {
	p := w.mem.userOf(openid)
	k := userKey(openid)
	if p == nil {
		if err := w.users.Delete(k); err != nil {
			return false, err
		}
		return false, errors.Join(w.deadSessions(openid), w.prevKey(openid))
	}
	return true, w.users.Put(k, userValue(k, p))
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
// stays.
func (w *diskWriter) deadSessions(openid string) error {
	k := userKey(openid)
	var dead [][]byte
	c := w.sessions.Cursor()
	for sk, _ := c.Seek(k); sk != nil && bytes.HasPrefix(sk, k); sk, _ = c.Next() {
		if _, th, ok := splitSessionKey(sk); ok {
			if owner, _, live := w.mem.liveSession(th); live && owner.openID() == openid {
				continue
			}
		}
		dead = append(dead, bytes.Clone(sk))
	}
	for _, sk := range dead {
		if err := w.sessions.Delete(sk); err != nil {
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
		return w.prevKeys.Delete(k)
	}
	return w.prevKeys.Put(k, prevKeyValue(k, key, exp))
}
