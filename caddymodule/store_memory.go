package caddymodule

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/patrickmn/go-cache"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// DefaultMaxSessions is the default limit of live sessions of one app in
// the memory store.
const DefaultMaxSessions = 1000000

// memoryPool holds one memoryStore per app id and snapshot file, so that a
// config reload with the same app id finds the sessions of the config it
// replaces. Two app ids never share an entry.
var memoryPool = caddy.NewUsagePool()

// MemoryStore keeps sessions in the memory of this Caddy process. They
// survive `caddy reload` (the store lives in a caddy.UsagePool keyed by app
// id) and, when Snapshot is set, a restart. They are not shared between
// gateways: run several instances with the redis store.
//
// Sessions have a fixed TTL (they are not extended by use). When
// MaxSessions is reached, the oldest sessions are dropped to make room: a
// login never fails because the store is full.
type MemoryStore struct {
	// MaxSessions caps the number of sessions kept for the app; beyond
	// it the oldest sessions are evicted. Default: 1000000 (about 350
	// MB of heap when every session belongs to a different user).
	MaxSessions int `json:"max_sessions,omitempty"`

	// Snapshot is a file the sessions are saved to every minute and when
	// the store is released (on shutdown), and loaded from when it is
	// opened, so that a restart keeps every session. Placeholders such as
	// {env.*} are resolved when the store is opened. Default: none (a
	// restart logs everyone out).
	//
	// The file holds token hashes, which grant nothing, but also every
	// user's WeChat session_key: it is written with mode 0600 and must be
	// protected like a private key. One file per app id.
	Snapshot string `json:"snapshot,omitempty"`

	logger *zap.Logger
	keys   []memoryPoolKey
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wechat_auth.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision validates the configuration.
func (m *MemoryStore) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	if m.MaxSessions < 0 {
		return fmt.Errorf("max_sessions must not be negative, got %d", m.MaxSessions)
	}
	return nil
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. Syntax:
//
//	memory {
//	    max_sessions <n>
//	    snapshot     <file>
//	}
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_sessions":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 {
				return d.Errf("max_sessions: %q is not a positive whole number", d.Val())
			}
			m.MaxSessions = n
		case "snapshot":
			if !d.NextArg() {
				return d.ArgErr()
			}
			m.Snapshot = d.Val()
		default:
			return d.Errf("unrecognized memory store subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.Errf("%s: too many arguments", d.Val())
		}
	}
	return nil
}

type memoryPoolKey struct{ appID, snapshot string }

// Open returns the memory store of appID, creating it (and loading the
// snapshot) if no loaded config holds it yet.
func (m *MemoryStore) Open(ctx caddy.Context, appID string) (Store, error) {
	if appID == "" {
		return nil, errors.New("memory store: empty app id")
	}
	logger := m.logger
	if logger == nil {
		logger = ctx.Logger(m)
	}
	maxSessions := cmp.Or(m.MaxSessions, DefaultMaxSessions)
	snap := ""
	if m.Snapshot != "" {
		snap = caddy.NewReplacer().ReplaceAll(m.Snapshot, "")
		if snap == "" {
			return nil, fmt.Errorf("memory store: snapshot %q resolves to an empty path", m.Snapshot)
		}
		if abs, err := filepath.Abs(snap); err == nil {
			snap = abs
		}
	}
	key := memoryPoolKey{appID: appID, snapshot: snap}

	// Two apps writing one snapshot file would overwrite each other's
	// sessions every minute; refuse it at config load.
	if snap != "" {
		var clash string
		memoryPool.Range(func(k, _ any) bool {
			if pk := k.(memoryPoolKey); pk.snapshot == snap && pk.appID != appID {
				clash = pk.appID
				return false
			}
			return true
		})
		if clash != "" {
			return nil, fmt.Errorf("memory store: snapshot file %s is already used by app %s", snap, clash)
		}
	}

	val, loaded, err := memoryPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newMemoryStore(appID, snap, maxSessions, logger), nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*memoryStore)
	if loaded {
		// A reload: the newest config's settings and logger win.
		s.maxSessions.Store(int64(maxSessions))
		s.logger.Store(logger)
		s.evict()
	}
	m.keys = append(m.keys, key)
	return s, nil
}

// Cleanup releases the stores opened by this module. The last config
// holding a store stops its janitor and writes its snapshot.
func (m *MemoryStore) Cleanup() error {
	err := releasePoolKeys(memoryPool, m.keys)
	m.keys = nil
	return err
}

// memUser is the shared record of one user; every session of the user is
// a cache entry pointing here, so a new session_key or a bound phone is
// seen by all of the user's tokens at once. The user is never modified in
// place: an update stores a new one, so Lookup reads it without a lock.
type memUser struct {
	u   atomic.Pointer[packedUser] // nil once revoked: all its tokens are dead
	n   int32                      // cache entries pointing here; guarded by memoryStore.mu
	exp uint32                     // latest expiry of those, unix seconds rounded up; guarded by memoryStore.mu
}

// packedUser is an immutable User whose five strings share one buffer.
// A user record then costs two small allocations instead of up to six
// (the User struct and each string apart): about 50 bytes less per user,
// which at a million users is what keeps a session within ~300 bytes.
// Lookup slices the buffer, which allocates nothing.
type packedUser struct {
	buf  string    // openid, session key, unionid, phone, country code, back to back
	ends [4]uint16 // where each of the first four ends in buf
}

// maxPackedUser bounds the fields of one user together (WeChat's are
// well under 200 bytes); ends are uint16.
const maxPackedUser = 1<<16 - 1

func packUser(u User) (*packedUser, error) {
	fields := [...]string{u.OpenID, u.SessionKey, u.UnionID, u.Phone, u.CountryCode}
	total := 0
	for _, f := range fields {
		total += len(f)
	}
	if total > maxPackedUser {
		return nil, fmt.Errorf("memory store: user record of %d bytes is too large", total)
	}
	// One copy of the caller's strings: the record never pins a larger
	// buffer they were sliced from.
	var b strings.Builder
	b.Grow(total)
	p := new(packedUser)
	for i, f := range fields {
		b.WriteString(f)
		if i < len(p.ends) {
			p.ends[i] = uint16(b.Len())
		}
	}
	p.buf = b.String()
	return p, nil
}

func (p *packedUser) openID() string { return p.buf[:p.ends[0]] }

func (p *packedUser) user() User {
	return User{
		OpenID:      p.buf[:p.ends[0]],
		SessionKey:  p.buf[p.ends[0]:p.ends[1]],
		UnionID:     p.buf[p.ends[1]:p.ends[2]],
		Phone:       p.buf[p.ends[2]:p.ends[3]],
		CountryCode: p.buf[p.ends[3]:],
	}
}

// storeUser makes p the user of rec, keying s.users by p's own openid
// bytes so that an older buffer is not kept alive by the map key. The
// caller holds s.mu.
func (s *memoryStore) storeUser(rec *memUser, p *packedUser) {
	delete(s.users, p.openID())
	rec.u.Store(p)
	s.users[p.openID()] = rec
}

// unixCeil is t in whole unix seconds, rounded up (a record then lives at
// most a second longer than its last session, never shorter).
func unixCeil(t time.Time) uint32 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return uint32(sec)
}

// expired reports whether every session of rec has expired by now.
func (rec *memUser) expired(now time.Time) bool { return int64(rec.exp) < now.Unix() }

// memoryStore is the Store shared by every config of one app.
//
// Sessions live in a go-cache keyed by the 32 bytes of the token hash,
// each entry holding the *memUser and expiring with the session. There is
// no per-session struct: a pointer in an interface costs no allocation.
// A session of its own user costs about 290 bytes at 1M sessions.
type memoryStore struct {
	appID       string
	snapshot    string
	maxSessions atomic.Int64
	logger      atomic.Pointer[zap.Logger]

	sessions *cache.Cache // string(TokenHash) → *memUser
	results  *cache.Cache // login code key → sealed answer (not snapshotted: worth minutes)

	mu      sync.Mutex          // guards users, revoked and every memUser's n and exp
	users   map[string]*memUser // by openid
	revoked int                 // entries of revoked users not yet removed from sessions

	evictMu sync.Mutex // one eviction scan at a time
	snapMu  sync.Mutex // one snapshot writer at a time
	stop    chan struct{}
	done    chan struct{}
}

// newMemoryStore makes the store, restores the snapshot if there is one,
// and starts the janitor. The caches get no janitor of their own (that
// goroutine ends only when a finalizer runs): ours stops in Destruct.
func newMemoryStore(appID, snapshot string, maxSessions int, logger *zap.Logger) *memoryStore {
	s := &memoryStore{
		appID:    appID,
		snapshot: snapshot,
		results:  cache.New(cache.NoExpiration, 0),
		users:    make(map[string]*memUser),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.maxSessions.Store(int64(maxSessions))
	s.logger.Store(logger)
	items := make(map[string]cache.Item)
	if snapshot != "" {
		s.loadSnapshot(items)
	}
	s.sessions = cache.NewFrom(cache.NoExpiration, 0, items)
	s.sessions.OnEvicted(s.evicted)
	s.evict() // a smaller max_sessions than before the restart
	go s.janitor()
	return s
}

// janitor drops expired sessions and login results every minute (the
// user records go with their last session, in evicted) and saves the
// snapshot.
func (s *memoryStore) janitor() {
	defer close(s.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sessions.DeleteExpired()
			s.results.DeleteExpired()
			s.save()
		}
	}
}

// Destruct is called by the usage pool when the last config holding the
// store is cleaned up: stop the janitor and save the sessions.
func (s *memoryStore) Destruct() error {
	close(s.stop)
	<-s.done
	return s.save()
}

// evicted is go-cache's OnEvicted hook: it runs after every deletion of a
// session (expiry, logout, eviction), outside the cache's lock. It keeps
// the user's count and drops the user record with its last session.
func (s *memoryStore) evicted(_ string, v any) {
	rec := v.(*memUser)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.n--
	u := rec.u.Load()
	switch {
	case u == nil:
		s.revoked--
	case rec.n == 0 && s.users[u.openID()] == rec:
		delete(s.users, u.openID())
	}
}

func (s *memoryStore) CreateSession(_ context.Context, h TokenHash, in User, ttl time.Duration) (time.Time, error) {
	if in.OpenID == "" {
		return time.Time{}, errors.New("memory store: empty openid")
	}
	if ttl <= 0 {
		return time.Time{}, fmt.Errorf("memory store: session ttl must be positive, got %v", ttl)
	}
	key := string(h[:])
	// go-cache overwrites without calling OnEvicted; a reused hash must
	// release its old user first. (Hashes of fresh random tokens are
	// never created twice at once, so no lock is needed around the two.)
	s.sessions.Delete(key)

	s.mu.Lock()
	now := time.Now()
	rec := s.users[in.OpenID]
	u := in
	if rec == nil || rec.expired(now) {
		// New, or every session of the user has expired and the janitor
		// has not run yet: start afresh, as Redis would.
		rec = &memUser{}
	} else {
		old := rec.u.Load().user()
		u.UnionID = cmp.Or(u.UnionID, old.UnionID)
		if u.Phone == "" {
			u.Phone, u.CountryCode = old.Phone, old.CountryCode
		}
	}
	p, err := packUser(u)
	if err != nil {
		s.mu.Unlock()
		return time.Time{}, err
	}
	s.storeUser(rec, p)
	s.sessions.Set(key, rec, ttl)
	// Read back go-cache's own expiry, so that Lookup reports exactly the
	// time returned here.
	_, exp, ok := s.sessions.GetWithExpiration(key)
	if !ok {
		exp = now.Add(ttl)
	}
	rec.n++
	rec.exp = max(rec.exp, unixCeil(exp))
	s.mu.Unlock()

	s.evict()
	return exp, nil
}

// evict drops the oldest sessions while there are more than maxSessions.
// Under a fixed TTL the oldest session is the one that expires first, so
// go-cache's expiries give the order. A FIFO of token hashes would cost 32
// bytes per session; instead the (rare) scan copies the entries, finds
// the cut-off expiry by sorting the expiries and removes a batch of 1/128
// of the limit beyond what is needed, so that at 1M sessions it runs once
// per ~8k logins (and takes ~0.4 s, most of it go-cache's Items copy).
func (s *memoryStore) evict() {
	limit := int(s.maxSessions.Load())
	if s.sessions.ItemCount() <= limit || !s.evictMu.TryLock() {
		return // under the limit, or another caller is already at it
	}
	defer s.evictMu.Unlock()
	s.sessions.DeleteExpired()
	items := s.sessions.Items()
	exps := make([]int64, 0, len(items))
	for k, it := range items {
		if it.Object.(*memUser).u.Load() == nil {
			s.sessions.Delete(k) // revoked: dead already
			delete(items, k)
			continue
		}
		exps = append(exps, it.Expiration)
	}
	if len(exps) <= limit {
		return
	}
	n := min(len(exps), len(exps)-limit+limit/128)
	slices.Sort(exps)
	for k, it := range items {
		if it.Expiration <= exps[n-1] { // (a tie at the cut-off goes too)
			s.sessions.Delete(k)
		}
	}
}

// Lookup is the hot path: one read-locked map look-up and an atomic load,
// no allocation (string(h[:]) is 32 bytes and does not escape, so the
// compiler keeps it on the stack).
func (s *memoryStore) Lookup(_ context.Context, h TokenHash) (Session, error) {
	v, exp, ok := s.sessions.GetWithExpiration(string(h[:]))
	if !ok {
		return Session{}, ErrNotFound
	}
	u := v.(*memUser).u.Load()
	if u == nil {
		s.sessions.Delete(string(h[:])) // revoked; drop it now it is seen
		return Session{}, ErrNotFound
	}
	return Session{User: u.user(), ExpiresAt: exp}, nil
}

func (s *memoryStore) DeleteSession(_ context.Context, h TokenHash) error {
	s.sessions.Delete(string(h[:]))
	return nil
}

// RevokeUser kills every session of openid at once by retiring the user
// record they share. Their cache entries are not found one by one (that
// would need a scan): Lookup drops each when it is next used, and expiry
// or eviction the rest; until then Count leaves them out.
func (s *memoryStore) RevokeUser(_ context.Context, openid string) (int, error) {
	s.sessions.DeleteExpired() // so that the count returned is of live sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.users[openid]
	if rec == nil {
		return 0, nil
	}
	delete(s.users, openid)
	rec.u.Store(nil) // from here on, Lookup of any of its tokens fails
	s.revoked += int(rec.n)
	return int(rec.n), nil
}

func (s *memoryStore) BindPhone(_ context.Context, openid, phone, countryCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.users[openid]
	if rec == nil || rec.expired(time.Now()) {
		return ErrNotFound
	}
	u := rec.u.Load().user()
	u.Phone, u.CountryCode = phone, countryCode
	p, err := packUser(u)
	if err != nil {
		return err
	}
	s.storeUser(rec, p)
	return nil
}

func (s *memoryStore) PutLoginResult(_ context.Context, key string, sealed []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory store: login result ttl must be positive, got %v", ttl)
	}
	s.results.Set(key, bytes.Clone(sealed), ttl)
	return nil
}

func (s *memoryStore) GetLoginResult(_ context.Context, key string) ([]byte, error) {
	v, ok := s.results.Get(key)
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v.([]byte)), nil
}

// Count sweeps expired sessions first, since go-cache's ItemCount counts
// them until they are deleted: O(sessions) under the cache lock (10-20 ms
// at 1M). It serves a metrics gauge and the admin stats, not requests.
func (s *memoryStore) Count(context.Context) (int, error) {
	s.sessions.DeleteExpired()
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(0, s.sessions.ItemCount()-s.revoked), nil
}

// The snapshot file is a header line, a gob stream of records (users,
// then sessions naming their user by openid) and the SHA-256 of all that:
//
//	caddy-wechat-auth snapshot 1 "<app id>"\n
//	gob snapRecord...
//	sha256 (32 bytes)
//
// It is replaced atomically, so a crash while writing leaves the old one.
const (
	snapMagic   = "caddy-wechat-auth snapshot"
	snapVersion = 1
)

// snapRecord is a user (no Hash) or a session of the user named by
// OpenID. gob leaves out empty fields: each kind pays only for its own.
type snapRecord struct {
	User
	Hash    []byte
	Expires int64 // unix ns
}

// save writes the snapshot, if there is one, and logs a failure.
func (s *memoryStore) save() error {
	if s.snapshot == "" {
		return nil
	}
	err := s.writeSnapshot()
	if err != nil {
		s.logger.Load().Error("writing session snapshot", zap.String("file", s.snapshot), zap.Error(err))
	}
	return err
}

// writeSnapshot saves the live sessions: a temporary file in the same
// directory (CreateTemp makes it 0600: it holds session keys), fsync, then
// a rename over the old one.
func (s *memoryStore) writeSnapshot() (err error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	// Sessions first: a user created after this copy is then written
	// without sessions and dropped at load; never the other way round.
	items := s.sessions.Items()
	s.mu.Lock()
	users := make([]User, 0, len(s.users))
	for _, rec := range s.users {
		users = append(users, rec.u.Load().user())
	}
	s.mu.Unlock()

	dir := filepath.Dir(s.snapshot)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.snapshot)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, sum))
	fmt.Fprintf(w, "%s %d %q\n", snapMagic, snapVersion, s.appID)
	enc := gob.NewEncoder(w)
	for _, u := range users {
		if err := enc.Encode(snapRecord{User: u}); err != nil {
			return err
		}
	}
	for k, it := range items {
		if u := it.Object.(*memUser).u.Load(); u != nil {
			if err := enc.Encode(snapRecord{User: User{OpenID: u.openID()}, Hash: []byte(k), Expires: it.Expiration}); err != nil {
				return err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := f.Write(sum.Sum(nil)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), s.snapshot); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename itself durable
		d.Sync()
		d.Close()
	}
	return nil
}

// loadSnapshot fills items and s.users from the snapshot file. A missing
// file is normal (first start); any other problem is logged and the file
// ignored: losing sessions logs users out, but a gateway that cannot start
// is worse.
func (s *memoryStore) loadSnapshot(items map[string]cache.Item) {
	logger := s.logger.Load().With(zap.String("file", s.snapshot))
	data, err := os.ReadFile(s.snapshot)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = s.restore(data, items)
	}
	if err != nil {
		clear(items)
		clear(s.users)
		logger.Warn("ignoring session snapshot; it will be replaced at the next save", zap.Error(err))
		return
	}
	logger.Info("restored sessions from snapshot", zap.Int("sessions", len(items)))
}

// restore parses a snapshot into items and s.users, leaving out expired
// sessions and users without a session.
func (s *memoryStore) restore(data []byte, items map[string]cache.Item) error {
	if !bytes.HasPrefix(data, []byte(snapMagic+" ")) {
		return errors.New("not a wechat_auth session snapshot")
	}
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || len(body) < sha256.Size {
		return errors.New("truncated")
	}
	var version int
	var app string
	if _, err := fmt.Sscanf(string(header), snapMagic+" %d %q", &version, &app); err != nil {
		return fmt.Errorf("bad header: %v", err)
	}
	if version != snapVersion {
		return fmt.Errorf("snapshot version %d is not supported by this build (want %d)", version, snapVersion)
	}
	if got := sha256.Sum256(data[:len(data)-sha256.Size]); !bytes.Equal(got[:], data[len(data)-sha256.Size:]) {
		return errors.New("checksum mismatch (truncated or corrupt)")
	}
	if app != s.appID {
		return fmt.Errorf("snapshot belongs to app %q, not %q", app, s.appID)
	}

	now := time.Now().UnixNano()
	dec := gob.NewDecoder(bytes.NewReader(body[:len(body)-sha256.Size]))
	for {
		var r snapRecord
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		switch rec := s.users[r.OpenID]; {
		case r.Hash == nil:
			p, err := packUser(r.User)
			if err != nil {
				return err
			}
			s.storeUser(&memUser{}, p)
		case rec != nil && len(r.Hash) == len(TokenHash{}) && r.Expires > now:
			items[string(r.Hash)] = cache.Item{Object: rec, Expiration: r.Expires}
			rec.n++
			rec.exp = max(rec.exp, unixCeil(time.Unix(0, r.Expires)))
		}
	}
	for id, rec := range s.users {
		if rec.n == 0 {
			delete(s.users, id)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
	_ StoreModule           = (*MemoryStore)(nil)
	_ Store                 = (*memoryStore)(nil)
	_ caddy.Destructor      = (*memoryStore)(nil)
)
