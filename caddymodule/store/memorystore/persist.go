package memorystore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// The persist file is a bbolt database (go.etcd.io/bbolt: already linked
// into every standard Caddy build, through its ACME server). It holds
// what a restart needs and nothing else:
//
//	meta      "magic"   fileMagic
//	          "version" fileVersion, in decimal
//	          "app_id"  the app it belongs to
//	sessions  token hash (32 bytes) → crc, expiry (unix ns), user gen, openid
//	users     openid → crc, gen, lengths, session key, unionid, phone, country code
//	prevkeys  openid → crc, user gen, expiry (unix ns), previous session key
//
// Every value starts with the CRC-32C of its key and the rest of the
// value, so that a damaged page is noticed at load rather than restored.
// Login results are not kept: they are worth minutes, and a client that
// retries across a restart just logs in again.
//
// Writes follow one rule: a write puts on disk what memory holds for a key
// at the moment of the write (or deletes the key when memory has none),
// inside bbolt's write transaction. Transactions run one at a time, so
// whatever order two changes reach the disk in, the last one to be written
// reads the newest state: the file never holds a state that memory has
// left behind. That makes every write idempotent (bbolt may run a batched
// function twice) and lets removals that need no answer (expiry, the
// session limit, a revoked token seen by Lookup) be queued and written in
// the background without racing a login of the same user.
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

// lockWait is how long opening the file waits for another process that
// holds it (bbolt locks the file) before giving up with an error.
const lockWait = 3 * time.Second

// batchDelay is how long bbolt gathers concurrent writers into one
// transaction (DB.Batch): logins that arrive within it share one commit
// and its two fsyncs. It is added to a lone login's latency.
const batchDelay = time.Millisecond

// flushChunk bounds the removals written per background transaction, so
// that a login's write never waits behind a long one.
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

// diskFile is an open persist file.
type diskFile struct {
	db   *bolt.DB
	path string
}

// diskState is the store's persist file, if it has one, and the removals
// waiting to be written to it.
type diskState struct {
	s  *memoryStore
	mu sync.RWMutex // read-held by every write in flight; write-held to change f
	f  *diskFile    // nil: nothing is persisted
	on atomic.Bool  // f != nil, read by the OnEvicted hooks without mu

	qmu       sync.Mutex
	qSessions []string // token hashes removed from memory
	qUsers    []string // openids whose record left memory
	qPrevKeys []string // openids whose previous key left memory
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

func (d *diskState) queueRemoved(key, openid string) {
	if !d.on.Load() {
		return
	}
	d.qmu.Lock()
	d.qSessions = append(d.qSessions, key)
	if openid != "" {
		d.qUsers = append(d.qUsers, openid)
	}
	d.qmu.Unlock()
}

func (d *diskState) queuePrevKey(openid string) {
	if !d.on.Load() {
		return
	}
	d.qmu.Lock()
	d.qPrevKeys = append(d.qPrevKeys, openid)
	d.qmu.Unlock()
}

// flush writes the queued removals, a chunk per transaction. A failure is
// logged (once a minute at most) and the rest kept for the next flush.
func (d *diskState) flush(s *memoryStore) {
	if !d.on.Load() {
		return
	}
	d.qmu.Lock()
	sessions, users, prevKeys := d.qSessions, d.qUsers, d.qPrevKeys
	d.qSessions, d.qUsers, d.qPrevKeys = nil, nil, nil
	d.qmu.Unlock()
	if len(sessions)+len(users)+len(prevKeys) == 0 {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.f == nil {
		return
	}
	for len(sessions)+len(users)+len(prevKeys) > 0 {
		ns, nu := min(len(sessions), flushChunk), min(len(users), flushChunk)
		np := min(len(prevKeys), flushChunk)
		err := d.f.db.Update(func(tx *bolt.Tx) error {
			w := newDiskWriter(s, tx)
			var errs []error
			for _, k := range sessions[:ns] {
				errs = append(errs, w.sessionKey(k))
			}
			for _, id := range users[:nu] {
				errs = append(errs, w.user(id), w.prevKey(id))
			}
			for _, id := range prevKeys[:np] {
				errs = append(errs, w.prevKey(id))
			}
			return errors.Join(errs...)
		})
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
					zap.String("file", d.f.path), zap.Error(err))
			}
			return
		}
		sessions, users, prevKeys = sessions[ns:], users[nu:], prevKeys[np:]
	}
}

// close writes what is queued and closes the file (the last config
// holding the store is gone: Caddy stops or the app left the config).
func (d *diskState) close(s *memoryStore) error {
	d.flush(s)
	f := d.swap(nil)
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

func (w *diskWriter) session(th store.TokenHash) error { return w.sessionKey(string(th[:])) }

// sessionKey writes the session of token hash key as memory has it: with
// its expiry and its user's openid and gen, or deleted.
func (w *diskWriter) sessionKey(key string) error {
	sh := w.s.shards[key[0]]
	v, exp, ok := sh.GetWithExpiration(key)
	var u *packedUser
	var rec *memUser
	if ok {
		rec = v.(*memUser)
		u = rec.u.Load()
	}
	if u == nil { // gone, expired or revoked
		return w.sessions.Delete([]byte(key))
	}
	id := u.openID()
	b := make([]byte, 4+8+8, 4+8+8+len(id))
	binary.BigEndian.PutUint64(b[4:], uint64(exp.UnixNano()))
	binary.BigEndian.PutUint64(b[12:], rec.gen)
	b = append(b, id...)
	return w.sessions.Put([]byte(key), sealRecord([]byte(key), b))
}

// user writes the record of openid as memory has it, or deletes it.
func (w *diskWriter) user(openid string) error {
	w.s.mu.Lock()
	rec := w.s.users[openid]
	var p *packedUser
	var gen uint64
	if rec != nil {
		p, gen = rec.u.Load(), rec.gen
	}
	w.s.mu.Unlock()
	if p == nil {
		return w.users.Delete([]byte(openid))
	}
	fields := p.buf[p.ends[0]:] // session key, unionid, phone, country code
	b := make([]byte, 4+8+6, 4+8+6+len(fields))
	binary.BigEndian.PutUint64(b[4:], gen)
	for i := range 3 {
		binary.BigEndian.PutUint16(b[12+2*i:], p.ends[i+1]-p.ends[i])
	}
	b = append(b, fields...)
	return w.users.Put([]byte(openid), sealRecord([]byte(openid), b))
}

// prevKey writes the previous session key of openid as memory has it, or
// deletes it.
func (w *diskWriter) prevKey(openid string) error {
	v, exp, ok := w.s.prevKeys.GetWithExpiration(openid)
	var gen uint64
	if ok {
		w.s.mu.Lock()
		rec := w.s.users[openid]
		if rec != nil {
			gen = rec.gen
		}
		w.s.mu.Unlock()
		ok = rec != nil
	}
	if !ok {
		return w.prevKeys.Delete([]byte(openid))
	}
	key := v.(string)
	b := make([]byte, 4+8+8, 4+8+8+len(key))
	binary.BigEndian.PutUint64(b[4:], gen)
	binary.BigEndian.PutUint64(b[12:], uint64(exp.UnixNano()))
	b = append(b, key...)
	return w.prevKeys.Put([]byte(openid), sealRecord([]byte(openid), b))
}

// decodeSession reads a sessions value (after its CRC).
func decodeSession(v []byte) (exp int64, gen uint64, openid []byte, err error) {
	if len(v) < 16 {
		return 0, 0, nil, errors.New("a session record is too short")
	}
	return int64(binary.BigEndian.Uint64(v)), binary.BigEndian.Uint64(v[8:]), v[16:], nil
}

// decodeUser reads a users value (after its CRC) into a packed user: one
// allocation for the five strings.
func decodeUser(openid, v []byte) (gen uint64, p *packedUser, err error) {
	if len(v) < 14 || len(openid) == 0 {
		return 0, nil, errors.New("a user record is too short")
	}
	gen = binary.BigEndian.Uint64(v)
	fields := v[14:]
	if len(openid)+len(fields) > maxPackedUser {
		return 0, nil, errors.New("a user record is too long")
	}
	p = new(packedUser)
	end := len(openid)
	p.ends[0] = uint16(end)
	for i := range 3 {
		end += int(binary.BigEndian.Uint16(v[8+2*i:]))
		if end > len(openid)+len(fields) {
			return 0, nil, errors.New("a user record has bad lengths")
		}
		p.ends[i+1] = uint16(end)
	}
	var b strings.Builder
	b.Grow(len(openid) + len(fields))
	b.Write(openid)
	b.Write(fields)
	p.buf = b.String()
	return gen, p, nil
}

// decodePrevKey reads a prevkeys value (after its CRC).
func decodePrevKey(v []byte) (gen uint64, exp int64, key []byte, err error) {
	if len(v) < 16 {
		return 0, 0, nil, errors.New("a previous-key record is too short")
	}
	return binary.BigEndian.Uint64(v), int64(binary.BigEndian.Uint64(v[8:])), v[16:], nil
}

// ---- opening a file -------------------------------------------------------

// fileVerdict is what identify found at a persist path.
type fileVerdict int

const (
	fileMissing fileVerdict = iota
	fileOurs                // a persist file of this app and version
	fileLegacy              // a snapshot file of an earlier version of the plugin
	fileSetAside            // anything else: set it aside, never overwrite it
)

// legacyMagic begins the snapshot files of earlier versions (legacy.go).
const legacyMagic = "caddy-wechat-auth snapshot"

// boltMagic is bbolt's magic number (go.etcd.io/bbolt/internal/common).
const boltMagic = 0xED0CDAED

// errInUse is returned when another process holds the file.
var errInUse = errors.New("the file is locked by another process (another Caddy using the same persist file?)")

// identify tells what is at path. reason and why explain a fileSetAside
// verdict: reason is a word for the new name, why a sentence for the log.
// err is a problem that the caller cannot resolve by setting the file
// aside: the path is a directory, unreadable, or in use.
func identify(path, appID string) (v fileVerdict, reason string, why error, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileMissing, "", nil, nil
	}
	if err != nil {
		return 0, "", nil, err
	}
	if !fi.Mode().IsRegular() {
		return 0, "", nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, "", nil, err
	}
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, "", nil, err
	}
	head = head[:n]
	if bytes.HasPrefix(head, []byte(legacyMagic+" ")) {
		return fileLegacy, "", nil, nil
	}
	if n == 0 {
		return fileSetAside, "not-ours", errors.New("the file is empty"), nil
	}
	// A bbolt file begins with a meta page: a 16-byte page header, then
	// the magic number (little-endian on every platform Caddy runs on).
	if n < 20 || binary.LittleEndian.Uint32(head[16:]) != boltMagic {
		return fileSetAside, "not-ours", errors.New("not a persist file of wechat_auth (nor any bbolt database)"), nil
	}

	db, err := openBolt(path, true)
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return 0, "", nil, errInUse
	case err != nil:
		return fileSetAside, "corrupt", fmt.Errorf("unreadable: %v", err), nil
	}
	defer db.Close()
	var version int
	var app string
	err = safeView(db, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || string(meta.Get([]byte("magic"))) != fileMagic {
			return errNotOurs
		}
		var err error
		if version, err = strconv.Atoi(string(meta.Get([]byte("version")))); err != nil {
			return fmt.Errorf("bad version: %v", err)
		}
		app = string(meta.Get([]byte("app_id")))
		return nil
	})
	switch {
	case errors.Is(err, errNotOurs):
		return fileSetAside, "not-ours", errors.New("a bbolt database, but not a persist file of wechat_auth"), nil
	case err != nil:
		return fileSetAside, "corrupt", err, nil
	case version > fileVersion:
		return fileSetAside, "future-version", fmt.Errorf("written by a newer version of the plugin (file version %d; this build reads %d)", version, fileVersion), nil
	case version != fileVersion:
		return fileSetAside, "corrupt", fmt.Errorf("unknown file version %d", version), nil
	case app != appID:
		return fileSetAside, "foreign", fmt.Errorf("the file belongs to app %q, not %q", app, appID), nil
	}
	return fileOurs, "", nil, nil
}

var errNotOurs = errors.New("not ours")

func openBolt(path string, readOnly bool) (db *bolt.DB, err error) {
	// A damaged file can make bbolt panic while it reads its meta pages.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt: %v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      lockWait,
		ReadOnly:     readOnly,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	db.MaxBatchDelay = batchDelay
	return db, nil
}

// safeView runs fn in a read transaction, turning a panic (bbolt meeting a
// damaged page) or a memory fault (a page beyond the end of a truncated
// file) into an error.
func safeView(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged: %v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return db.View(fn)
}

// setAside renames the file at path out of the way, next to it, and
// returns the new name: path.<reason>-<UTC time>[-n]. It never deletes
// and never overwrites.
func setAside(path, reason string) (string, error) {
	base := path + "." + reason + "-" + time.Now().UTC().Format("20060102T150405Z")
	to := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	syncDir(filepath.Dir(path))
	return to, nil
}

// syncDir makes a rename or a creation in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// createFile makes a new, empty persist file at path, which must not
// exist; its directory is made (0700) if needed.
func createFile(path, appID string) (*diskFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s exists", path) // (a caller's bug: never overwrite)
	}
	db, err := openBolt(path, false)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		for k, v := range map[string]string{"magic": fileMagic, "version": strconv.Itoa(fileVersion), "app_id": appID} {
			if err := meta.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketSessions, bucketUsers, bucketPrevKeys} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	syncDir(dir)
	return &diskFile{db: db, path: path}, nil
}

// openAtStart gives a new store its persist file: it loads ours, converts
// a legacy snapshot, sets anything else aside, and starts a new file where
// there is none. A file it cannot make sense of costs the sessions in it,
// never the start of the gateway; only a path it cannot use at all (a
// directory, no permission, a file locked by another process) is an error.
func (s *memoryStore) openAtStart(path string) error {
	logger := s.logger.Load().With(zap.String("file", path))
	v, reason, why, err := identify(path, s.appID)
	if err != nil {
		return fmt.Errorf("memory store: persist file %s: %w", path, err)
	}
	var restored int
	switch v {
	case fileOurs:
		f, err := openBolt(path, false)
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("memory store: persist file %s: %w", path, errInUse)
		}
		if err == nil {
			t0 := time.Now()
			if restored, err = s.load(f); err == nil {
				s.disk.swap(&diskFile{db: f, path: path})
				logger.Info("restored sessions", zap.Int("sessions", restored), zap.Duration("took", time.Since(t0)))
				return nil
			}
			f.Close()
			s.resetMemory()
		}
		v, reason, why = fileSetAside, "corrupt", err
	case fileLegacy:
		restored, err = s.loadLegacy(path)
		if err != nil {
			s.resetMemory()
			var le *legacyError
			reason, why = "corrupt", err
			if errors.As(err, &le) {
				reason = le.reason
			}
		} else {
			reason = "snapshot-v1"
		}
	}
	if v != fileMissing {
		to, err := setAside(path, reason)
		if err != nil {
			return fmt.Errorf("memory store: setting %s aside: %v", path, err)
		}
		if reason == "snapshot-v1" {
			logger.Info("converting the snapshot file of an earlier version to a persist file; the old file is kept",
				zap.Int("sessions", restored), zap.String("moved_to", to))
		} else {
			logger.Error("persist file set aside; starting with no sessions",
				zap.String("reason", reason), zap.NamedError("problem", why), zap.String("moved_to", to))
		}
	}
	f, err := createFile(path, s.appID)
	if err != nil {
		return fmt.Errorf("memory store: creating persist file %s: %v", path, err)
	}
	s.disk.swap(f)
	if restored > 0 {
		if err := s.dump(f); err != nil {
			return fmt.Errorf("memory store: writing persist file %s: %v", path, err)
		}
	}
	return nil
}

// resetMemory empties a store whose load failed half way.
func (s *memoryStore) resetMemory() {
	s.mu.Lock()
	clear(s.users)
	s.revoked = 0
	s.mu.Unlock()
	s.setShards(nil)
	s.prevKeys.Flush()
}

// load fills the new store from f. Sessions that expired, or whose user
// record is gone or newer (revoked), users without a session and stale
// previous keys are left out, and queued for removal from the file. Any
// damage (a bad checksum, a malformed record, a page bbolt cannot read)
// fails it as a whole.
func (s *memoryStore) load(f *bolt.DB) (int, error) {
	now := time.Now().UnixNano()
	var items [numShards]map[string]cache.Item
	prev := make(map[string]cache.Item)
	var stale, staleUsers, stalePrev []string
	var maxGen uint64
	n := 0
	err := safeView(f, func(tx *bolt.Tx) error {
		users, sessions, prevKeys := tx.Bucket(bucketUsers), tx.Bucket(bucketSessions), tx.Bucket(bucketPrevKeys)
		if users == nil || sessions == nil || prevKeys == nil {
			return errors.New("a bucket is missing")
		}
		c := users.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			body, err := openRecord(k, v)
			if err != nil {
				return err
			}
			gen, p, err := decodeUser(k, body)
			if err != nil {
				return err
			}
			maxGen = max(maxGen, gen)
			rec := &memUser{gen: gen}
			rec.u.Store(p)
			s.users[p.openID()] = rec
		}
		c = sessions.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			body, err := openRecord(k, v)
			if err != nil {
				return err
			}
			exp, gen, openid, err := decodeSession(body)
			if err != nil {
				return err
			}
			if len(k) != len(store.TokenHash{}) {
				return errors.New("a session key is not a token hash")
			}
			maxGen = max(maxGen, gen)
			rec := s.users[string(openid)]
			if rec == nil || rec.gen != gen || exp <= now {
				stale = append(stale, string(k))
				continue
			}
			m := items[k[0]]
			if m == nil {
				m = make(map[string]cache.Item)
				items[k[0]] = m
			}
			m[string(k)] = cache.Item{Object: rec, Expiration: exp}
			rec.n++
			rec.exp = max(rec.exp, unixCeil(time.Unix(0, exp)))
			n++
		}
		c = prevKeys.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			body, err := openRecord(k, v)
			if err != nil {
				return err
			}
			gen, exp, key, err := decodePrevKey(body)
			if err != nil {
				return err
			}
			maxGen = max(maxGen, gen)
			if rec := s.users[string(k)]; rec == nil || rec.gen != gen || exp <= now {
				stalePrev = append(stalePrev, string(k))
				continue
			}
			prev[string(k)] = cache.Item{Object: string(key), Expiration: exp}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for id, rec := range s.users {
		if rec.n == 0 {
			delete(s.users, id)
			staleUsers = append(staleUsers, id)
		}
	}
	// A gen not seen in the file, even in a stale record: a revoked
	// user's sessions stay stale whatever the user does next.
	s.nextGen = maxGen + 1
	s.setShards(&items)
	s.prevKeys = cache.NewFrom(cache.NoExpiration, 0, prev)
	s.prevKeys.OnEvicted(s.prevKeyRemoved)
	s.disk.qSessions, s.disk.qUsers, s.disk.qPrevKeys = stale, staleUsers, stalePrev
	return n, nil
}

// dump writes every session, user and previous key in memory to f, a new
// file, in key order (bbolt then fills its pages), a chunk per
// transaction. f is already the store's persist file: changes made
// meanwhile are written by their own calls, and each record written here
// is what memory holds at the time, so the two never disagree.
func (s *memoryStore) dump(f *diskFile) error {
	const chunk = 20000
	write := func(keys []string, put func(*diskWriter, string) error) error {
		for len(keys) > 0 {
			n := min(len(keys), chunk)
			err := f.db.Update(func(tx *bolt.Tx) error {
				w := newDiskWriter(s, tx)
				w.bulk()
				for _, k := range keys[:n] {
					if err := put(w, k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			keys = keys[n:]
		}
		return nil
	}
	s.mu.Lock()
	ids := make([]string, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	if err := write(ids, (*diskWriter).user); err != nil {
		return err
	}
	ids = ids[:0]
	for id := range s.prevKeys.Items() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if err := write(ids, (*diskWriter).prevKey); err != nil {
		return err
	}
	for _, sh := range s.shards {
		items := sh.Items()
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if err := write(keys, (*diskWriter).sessionKey); err != nil {
			return err
		}
	}
	return nil
}

// usePersist makes path the store's persist file ("": none) while the
// store is live: a reload added, moved or removed persist. Memory holds
// the newest state, so whatever file is at the new path is set aside (it
// would bring back sessions logged out since it was written) and a new one
// is written from memory before usePersist returns. The file left behind
// is closed and set aside too: it stops following the sessions, and a
// later start must not restore it.
func (s *memoryStore) usePersist(path string) error {
	cur := s.disk.path()
	if path == cur {
		return nil
	}
	logger := s.logger.Load()
	var nf *diskFile
	if path != "" {
		v, _, _, err := identify(path, s.appID)
		if err != nil {
			return fmt.Errorf("memory store: persist file %s: %w", path, err)
		}
		if v != fileMissing {
			to, err := setAside(path, "stale")
			if err != nil {
				return fmt.Errorf("memory store: setting %s aside: %v", path, err)
			}
			logger.Warn("persist file set aside: the sessions in memory are newer",
				zap.String("file", path), zap.String("moved_to", to))
		}
		if nf, err = createFile(path, s.appID); err != nil {
			return fmt.Errorf("memory store: creating persist file %s: %v", path, err)
		}
	}
	old := s.disk.swap(nf)
	if nf != nil {
		t0 := time.Now()
		if err := s.dump(nf); err != nil {
			s.disk.swap(old)
			nf.db.Close()
			return fmt.Errorf("memory store: writing persist file %s: %v", path, err)
		}
		n, _ := s.Count(context.Background())
		logger.Info("persisting sessions", zap.String("file", path), zap.Int("sessions", n), zap.Duration("took", time.Since(t0)))
	}
	if old != nil {
		if err := old.db.Close(); err != nil {
			logger.Error("closing the persist file", zap.String("file", old.path), zap.Error(err))
		}
		to, err := setAside(old.path, "unused")
		if err != nil {
			logger.Error("setting the persist file no longer used aside", zap.String("file", old.path), zap.Error(err))
		} else {
			logger.Warn("persist file no longer used by the config: set aside so that a later start does not restore it",
				zap.String("file", old.path), zap.String("moved_to", to))
		}
	}
	return nil
}
