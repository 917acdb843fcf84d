package memorystore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// The persist file is a bbolt database (go.etcd.io/bbolt: already linked
// into every standard Caddy build, through its ACME server). It holds
// what a restart needs and nothing else. Users are keyed by U, a length
// byte and the openid, and everything of a user sorts together:
//
//	meta      "magic"   fileMagic
//	          "version" fileVersion, in decimal
//	          "app_id"  the app it belongs to
//	users     U → crc, 3 lengths, session key, unionid, phone, country code
//	sessions  U + token hash (32 bytes) → crc, expiry (unix ns)
//	prevkeys  U → crc, expiry (unix ns), previous session key
//
// (a crc is 4 bytes, an expiry 8, a length 1; big-endian.) Every value
// starts with the CRC-32C of its key and the rest of the value, so that a
// damaged page is noticed at load rather than restored. Login results are
// not kept: they are worth minutes, and a client that retries across a
// restart just logs in again.
//
// Loading walks users and sessions side by side, both in U order: no
// look-up per session. A revoke deletes the user's record and sessions in
// one range, so nothing of a revoked user can be restored.
//
// Writes follow one rule: a write puts on disk what memory holds for a key
// at the moment of the write (or deletes the key when memory has none),
// inside bbolt's write transaction. Transactions run one at a time, so
// whatever order two changes reach the disk in, the last one written
// reads the newest state: the file never keeps a state that memory has
// left behind. That makes every write idempotent (bbolt may run a batched
// function twice) and lets removals that need no answer (expiry, the
// session limit, a user's last session gone) be queued and written in the
// background without racing a login of the same user.
const (
	fileMagic   = "caddy-wechat-auth memory store"
	fileVersion = 1
)

var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketUsers    = []byte("users")
	bucketPrevKeys = []byte("prevkeys")
)

// errClosed answers a change made after the store was let go.
var errClosed = errors.New("memory store: closed (Caddy is stopping)")

// flushChunk bounds the removals written per background transaction, so
// that a login's write never waits long behind one.
const flushChunk = 2048

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func recordCRC(key, rest []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, key), crcTable, rest)
}

// sealRecord fills in the CRC of a value whose first 4 bytes are for it.
func sealRecord(key, v []byte) []byte {
	binary.BigEndian.PutUint32(v, recordCRC(key, v[4:]))
	return v
}

// openRecord checks the CRC and returns the value after it.
func openRecord(key, v []byte) ([]byte, error) {
	if len(v) < 4 || binary.BigEndian.Uint32(v) != recordCRC(key, v[4:]) {
		return nil, errors.New("a record fails its checksum")
	}
	return v[4:], nil
}

// userKey is U: the length of the openid, then the openid (at most
// maxField bytes: packUser refuses longer).
func userKey(openid string) []byte {
	k := make([]byte, 1, 1+len(openid)+len(store.TokenHash{}))
	k[0] = byte(len(openid))
	return append(k, openid...)
}

// sessionKey is U and the token hash.
func sessionKey(openid string, th []byte) []byte { return append(userKey(openid), th...) }

// splitSessionKey returns the U and the token hash of a session key.
func splitSessionKey(k []byte) (u, th []byte, ok bool) {
	if len(k) == 0 || len(k) != 1+int(k[0])+len(store.TokenHash{}) {
		return nil, nil, false
	}
	return k[:1+k[0]], k[1+k[0]:], true
}

// diskFile is an open persist file.
type diskFile struct {
	db   *bolt.DB
	path string
}

// diskState is the store's persist file, if it has one, and the removals
// waiting to be written to it.
type diskState struct {
	s      *memoryStore
	mu     sync.RWMutex // read-held by every write in flight; write-held to change f
	f      *diskFile    // nil: nothing is persisted
	closed bool         // the store is gone: a write is an error, not a no-op
	on     atomic.Bool  // f != nil, read by the OnEvicted hooks without mu

	flushMu   sync.Mutex // one flush at a time
	qmu       sync.Mutex
	qSessions []string // session keys (U + hash) of sessions removed from memory
	qUsers    []string // openids whose record left memory
	qPrevKeys []string // openids whose previous key left memory
	flushing  []string // the session keys a flush has taken and not written yet
	lastErr   time.Time
}

// path is the file persisted to, or "".
func (d *diskState) path() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.f == nil {
		return ""
	}
	return d.f.path
}

// write runs fn in a batched write transaction and returns once it is on
// disk; without a persist file it does nothing.
func (d *diskState) write(fn func(*diskWriter) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		// A request that outlived Caddy's shutdown: its change would
		// be answered but never reach the file.
		return errClosed
	}
	if d.f == nil {
		return nil
	}
	err := d.f.db.Batch(func(tx *bolt.Tx) error { return fn(newDiskWriter(d.s, tx)) })
	if err != nil {
		return fmt.Errorf("memory store: writing %s: %w", d.f.path, err)
	}
	return nil
}

// swap makes f the persist file (nil: none) once the writes in flight to
// the old one are done, and returns the old one.
func (d *diskState) swap(f *diskFile) *diskFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.f
	d.f = f
	d.on.Store(f != nil)
	return old
}

// queueRemoved queues a session that left memory, and its user's record
// when it was the last session (openid is then set). A revoked user's
// sessions need nothing: the revoke deleted them from the file.
func (d *diskState) queueRemoved(th string, u *packedUser, last bool) {
	if !d.on.Load() || u == nil {
		return
	}
	d.qmu.Lock()
	d.qSessions = append(d.qSessions, string(sessionKey(u.openID(), []byte(th))))
	if last {
		d.qUsers = append(d.qUsers, u.openID())
	}
	d.qmu.Unlock()
}

// pendingSession returns the file key of the session th when its removal
// is queued or being flushed, and so perhaps not on disk yet.
func (d *diskState) pendingSession(th store.TokenHash) (string, bool) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	for _, keys := range [2][]string{d.qSessions, d.flushing} {
		for _, k := range keys {
			if strings.HasSuffix(k, string(th[:])) {
				return k, true
			}
		}
	}
	return "", false
}

func (d *diskState) queuePrevKey(openid string) {
	if !d.on.Load() {
		return
	}
	d.qmu.Lock()
	d.qPrevKeys = append(d.qPrevKeys, openid)
	d.qmu.Unlock()
}

// flush writes the queued removals, a chunk per transaction, resting
// between chunks (restFactor). A failure is logged (once a minute at most)
// and the rest kept for the next flush.
func (d *diskState) flush(s *memoryStore) {
	if !d.on.Load() {
		return
	}
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.qmu.Lock()
	sessions, users, prevKeys := d.qSessions, d.qUsers, d.qPrevKeys
	d.qSessions, d.qUsers, d.qPrevKeys = nil, nil, nil
	d.flushing = sessions
	d.qmu.Unlock()
	defer func() {
		d.qmu.Lock()
		d.flushing = nil
		d.qmu.Unlock()
	}()
	if len(sessions)+len(users)+len(prevKeys) == 0 {
		return
	}
	var lastChunk time.Duration
	for first := true; len(sessions)+len(users)+len(prevKeys) > 0; first = false {
		if !first {
			s.rest(lastChunk)
		}
		t0 := time.Now()
		ns, nu := min(len(sessions), flushChunk), min(len(users), flushChunk)
		np := min(len(prevKeys), flushChunk)
		// The file is held a chunk at a time, never across a rest: a
		// reload that switches files (swap) would otherwise wait for the
		// whole flush, and every login behind it.
		d.mu.RLock()
		f := d.f
		if f == nil {
			d.mu.RUnlock()
			return
		}
		err := f.db.Update(func(tx *bolt.Tx) error {
			w := newDiskWriter(s, tx)
			var errs []error
			for _, k := range sessions[:ns] {
				errs = append(errs, w.sessionAt([]byte(k)))
			}
			for _, id := range users[:nu] {
				errs = append(errs, w.user(id))
			}
			for _, id := range prevKeys[:np] {
				errs = append(errs, w.prevKey(id))
			}
			return errors.Join(errs...)
		})
		d.mu.RUnlock()
		if err != nil {
			d.qmu.Lock()
			d.qSessions = append(d.qSessions, sessions...)
			d.qUsers = append(d.qUsers, users...)
			d.qPrevKeys = append(d.qPrevKeys, prevKeys...)
			logIt := time.Since(d.lastErr) > time.Minute
			if logIt {
				d.lastErr = time.Now()
			}
			d.qmu.Unlock()
			if logIt {
				s.logger.Load().Error("writing removed sessions to the persist file; will retry",
					zap.String("file", f.path), zap.Error(err))
			}
			return
		}
		sessions, users, prevKeys = sessions[ns:], users[nu:], prevKeys[np:]
		d.qmu.Lock()
		d.flushing = sessions
		d.qmu.Unlock()
		lastChunk = time.Since(t0)
	}
}

// close writes what is queued and closes the file (the last config
// holding the store is gone: Caddy stops or the app left the config).
func (d *diskState) close(s *memoryStore) error {
	d.flush(s)
	d.mu.Lock()
	f := d.f
	d.f, d.closed = nil, true
	d.on.Store(false)
	d.mu.Unlock()
	if f == nil {
		return nil
	}
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("memory store: closing %s: %v", f.path, err)
	}
	return nil
}

// diskWriter writes records inside one transaction, each the projection of
// what memory holds now for its key.
//
// bbolt keeps the key and value given to Put until the transaction
// commits, so each Put gets slices of its own.
type diskWriter struct {
	s                         *memoryStore
	sessions, users, prevKeys *bolt.Bucket
}

func newDiskWriter(s *memoryStore, tx *bolt.Tx) *diskWriter {
	return &diskWriter{
		s:        s,
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

// liveSession returns the expiry of th if memory has it as a live session
// of openid.
func (w *diskWriter) liveSession(openid string, th []byte) (time.Time, bool) {
	v, exp, ok := w.s.shards[th[0]].GetWithExpiration(string(th))
	if !ok {
		return time.Time{}, false
	}
	u := v.(*memUser).u.Load()
	return exp, u != nil && u.openID() == openid
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
	exp, live := w.liveSession(string(u[1:]), th)
	if !live { // gone, expired, revoked or now someone else's
		return w.sessions.Delete(k)
	}
	b := make([]byte, 4+8)
	binary.BigEndian.PutUint64(b[4:], uint64(exp.UnixNano()))
	return w.sessions.Put(k, sealRecord(k, b))
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
	w.s.mu.Lock()
	rec := w.s.users[openid]
	var p *packedUser
	if rec != nil {
		p = rec.u.Load()
	}
	w.s.mu.Unlock()
	k := userKey(openid)
	if p == nil {
		if err := w.users.Delete(k); err != nil {
			return false, err
		}
		return false, errors.Join(w.deadSessions(openid), w.prevKey(openid))
	}
	fields := p.buf[p.lens[0]:] // session key, unionid, phone, country code
	b := make([]byte, 4+3, 4+3+len(fields))
	copy(b[4:], p.lens[1:])
	b = append(b, fields...)
	return true, w.users.Put(k, sealRecord(k, b))
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
			if _, live := w.liveSession(openid, th); live {
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
	v, exp, ok := w.s.prevKeys.GetWithExpiration(openid)
	if ok {
		w.s.mu.Lock()
		ok = w.s.users[openid] != nil
		w.s.mu.Unlock()
	}
	if !ok {
		return w.prevKeys.Delete(k)
	}
	key := v.(string)
	b := make([]byte, 4+8, 4+8+len(key))
	binary.BigEndian.PutUint64(b[4:], uint64(exp.UnixNano()))
	b = append(b, key...)
	return w.prevKeys.Put(k, sealRecord(k, b))
}

// decodeUser reads a users record into a packed user: one allocation for
// the five strings.
func decodeUser(k, v []byte) (*packedUser, error) {
	body, err := openRecord(k, v)
	if err != nil {
		return nil, err
	}
	if len(k) < 2 || int(k[0]) != len(k)-1 || len(body) < 3 {
		return nil, errors.New("a user record is malformed")
	}
	openid, fields := k[1:], body[3:]
	p := &packedUser{}
	p.lens[0] = uint8(len(openid))
	copy(p.lens[1:], body[:3])
	rest := len(fields) - int(p.lens[1]) - int(p.lens[2]) - int(p.lens[3])
	if rest < 0 || rest > maxField {
		return nil, errors.New("a user record has bad lengths")
	}
	var b strings.Builder
	b.Grow(len(openid) + len(fields))
	b.Write(openid)
	b.Write(fields)
	p.buf = b.String()
	return p, nil
}

// decodeExpiry reads a sessions or prevkeys record: the expiry, then the
// rest.
func decodeExpiry(k, v []byte) (int64, []byte, error) {
	body, err := openRecord(k, v)
	if err != nil {
		return 0, nil, err
	}
	if len(body) < 8 {
		return 0, nil, errors.New("a record is too short")
	}
	return int64(binary.BigEndian.Uint64(body)), body[8:], nil
}
