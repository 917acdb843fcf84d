package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	gocache "github.com/patrickmn/go-cache"
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
	// it the oldest sessions are evicted. Default: 1000000 (about 280
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
	maxSessions := m.MaxSessions
	if maxSessions == 0 {
		maxSessions = DefaultMaxSessions
	}
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
		s := newMemoryStore(appID, snap, maxSessions, logger)
		if snap != "" {
			s.loadSnapshot()
		}
		s.start()
		return s, nil
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
	var errs []error
	for _, k := range m.keys {
		if _, err := memoryPool.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	m.keys = nil
	return errors.Join(errs...)
}

// memShardCount is the number of independently locked parts of the
// session map. Token hashes are uniform, so their first byte spreads
// sessions evenly; more shards mean shorter lock holds for the janitor
// and less contention between logins and look-ups.
const memShardCount = 64

// memUser is the shared record of one user. Sessions point at it, so a
// new session_key or a bound phone is seen by every token of the user.
// The User it points at is never modified: an update stores a new one, so
// Lookup always reads a consistent record without a lock.
type memUser struct {
	// u is nil once the user was revoked: every session pointing here is
	// dead from that instant, and the janitor removes them later.
	u atomic.Pointer[User]
	// exp is the latest expiry of any session of the user (unix ns); the
	// record is dropped after it. Guarded by the user shard's lock.
	exp int64
}

// memSession is one session: 48 bytes in the map with its key.
type memSession struct {
	user *memUser
	exp  int64 // unix ns
}

type memShard struct {
	mu sync.RWMutex
	m  sessTable
	_  [24]byte // keep shards on separate cache lines
}

// sessTable is an open-addressing hash table of sessions. A Go map would
// do, but its load swings between 44% and 88% in step across all shards
// (every table splits at the same time when keys are uniform), so at some
// sizes it costs 117 bytes per 48-byte entry; this table grows by 1.25x
// and stays between 64% and 80% full. Keys are SHA-256 hashes, uniform
// already, so 8 of their bytes are the hash. Linear probing, with
// backward-shift deletion (no tombstones).
type sessTable struct {
	slots []memSlot // an empty slot has a nil user
	n     int
}

type memSlot struct {
	h TokenHash
	e memSession
}

const sessTableMinCap = 16

func (t *sessTable) home(h TokenHash) int {
	hi, _ := bits.Mul64(binary.LittleEndian.Uint64(h[8:16]), uint64(len(t.slots)))
	return int(hi)
}

func (t *sessTable) find(h TokenHash) int {
	if t.n == 0 {
		return -1
	}
	for i := t.home(h); ; {
		sl := &t.slots[i]
		if sl.e.user == nil {
			return -1
		}
		if sl.h == h {
			return i
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

func (t *sessTable) get(h TokenHash) (memSession, bool) {
	if i := t.find(h); i >= 0 {
		return t.slots[i].e, true
	}
	return memSession{}, false
}

// put stores e under h and reports whether h was already there.
func (t *sessTable) put(h TokenHash, e memSession) bool {
	if i := t.find(h); i >= 0 {
		t.slots[i].e = e
		return true
	}
	if (t.n+1)*5 > len(t.slots)*4 {
		t.resize(max(sessTableMinCap, len(t.slots)*5/4+1))
	}
	t.insert(h, e)
	t.n++
	return false
}

func (t *sessTable) insert(h TokenHash, e memSession) {
	i := t.home(h)
	for t.slots[i].e.user != nil {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	t.slots[i] = memSlot{h: h, e: e}
}

func (t *sessTable) resize(capacity int) {
	old := t.slots
	t.slots = make([]memSlot, capacity)
	for i := range old {
		if old[i].e.user != nil {
			t.insert(old[i].h, old[i].e)
		}
	}
}

// del removes h and reports whether it was there.
func (t *sessTable) del(h TokenHash) bool {
	i := t.find(h)
	if i < 0 {
		return false
	}
	// Pull later entries of the probe run back into the hole unless that
	// would put them before their home slot.
	for j := i; ; {
		if j++; j == len(t.slots) {
			j = 0
		}
		if t.slots[j].e.user == nil {
			break
		}
		k := t.home(t.slots[j].h)
		if (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = memSlot{}
	t.n--
	if len(t.slots) > sessTableMinCap && t.n*4 < len(t.slots) {
		t.resize(max(sessTableMinCap, t.n*3/2+1)) // give memory back after a mass expiry
	}
	return true
}

// all iterates over the sessions; the table must not change meanwhile.
func (t *sessTable) all() iter.Seq2[TokenHash, memSession] {
	return func(yield func(TokenHash, memSession) bool) {
		for i := range t.slots {
			if t.slots[i].e.user != nil && !yield(t.slots[i].h, t.slots[i].e) {
				return
			}
		}
	}
}

// deleteIf removes the sessions for which drop says so, and returns how
// many.
func (t *sessTable) deleteIf(drop func(memSession) bool) int {
	var doomed []TokenHash
	for h, e := range t.all() {
		if drop(e) {
			doomed = append(doomed, h)
		}
	}
	for _, h := range doomed {
		t.del(h)
	}
	return len(doomed)
}

type memUserShard struct {
	mu sync.Mutex
	m  map[string]*memUser
	_  [48]byte
}

// memoryStore is the Store shared by every config of one app.
type memoryStore struct {
	appID       string
	snapshot    string
	maxSessions atomic.Int64
	logger      atomic.Pointer[zap.Logger]

	shards [memShardCount]memShard
	users  [memShardCount]memUserShard
	size   atomic.Int64 // entries in the session maps, live or not yet swept

	// evictMu makes one caller at a time do the eviction scan.
	evictMu sync.Mutex

	// results keeps sealed login answers for the few minutes a client may
	// retry a code (not snapshotted: they are worth minutes).
	results *gocache.Cache

	snapMu sync.Mutex // one snapshot writer at a time
	stop   chan struct{}
	done   chan struct{}
}

func newMemoryStore(appID, snapshot string, maxSessions int, logger *zap.Logger) *memoryStore {
	s := &memoryStore{
		appID:    appID,
		snapshot: snapshot,
		// No go-cache janitor: ours drops expired results, so that no
		// goroutine outlives Destruct waiting for a finalizer.
		results: gocache.New(gocache.NoExpiration, 0),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.maxSessions.Store(int64(maxSessions))
	s.logger.Store(logger)
	for i := range s.shards {
		s.users[i].m = make(map[string]*memUser)
	}
	return s
}

func (s *memoryStore) shard(h TokenHash) *memShard {
	return &s.shards[h[0]%memShardCount]
}

func (s *memoryStore) userShard(openid string) *memUserShard {
	// FNV-1a; openids are WeChat-issued, not attacker-chosen, and a bad
	// spread would only cost lock contention.
	var x uint32 = 2166136261
	for i := 0; i < len(openid); i++ {
		x ^= uint32(openid[i])
		x *= 16777619
	}
	return &s.users[x%memShardCount]
}

// start runs the janitor: every minute it drops expired and revoked
// sessions and writes the snapshot.
func (s *memoryStore) start() {
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.results.DeleteExpired()
				s.sweep()
				if s.snapshot != "" {
					if err := s.writeSnapshot(); err != nil {
						s.logger.Load().Error("writing session snapshot", zap.String("file", s.snapshot), zap.Error(err))
					}
				}
			}
		}
	}()
}

// Destruct is called by the usage pool when the last config holding the
// store is cleaned up: stop the janitors and save the sessions.
func (s *memoryStore) Destruct() error {
	close(s.stop)
	<-s.done
	s.results.Flush()
	if s.snapshot == "" {
		return nil
	}
	s.sweep()
	if err := s.writeSnapshot(); err != nil {
		s.logger.Load().Error("writing session snapshot", zap.String("file", s.snapshot), zap.Error(err))
		return err
	}
	return nil
}

// attachUser upserts the user record and returns it; the session that
// will point at it expires at exp.
func (s *memoryStore) attachUser(in User, exp int64) *memUser {
	us := s.userShard(in.OpenID)
	us.mu.Lock()
	defer us.mu.Unlock()
	rec := us.m[in.OpenID]
	nu := &User{
		// Copies, so that a record never pins a larger buffer the caller
		// sliced these strings from.
		UnionID:     strings.Clone(in.UnionID),
		SessionKey:  strings.Clone(in.SessionKey),
		Phone:       strings.Clone(in.Phone),
		CountryCode: strings.Clone(in.CountryCode),
	}
	if rec == nil || rec.exp <= time.Now().UnixNano() {
		// New, or every session of the user has expired and the janitor
		// has not dropped the record yet: start afresh, as Redis would.
		rec = &memUser{}
		nu.OpenID = strings.Clone(in.OpenID)
		us.m[nu.OpenID] = rec
	} else {
		old := rec.u.Load()
		nu.OpenID = old.OpenID // share the map key's bytes
		if nu.UnionID == "" {
			nu.UnionID = old.UnionID
		}
		if nu.Phone == "" {
			nu.Phone, nu.CountryCode = old.Phone, old.CountryCode
		}
	}
	rec.u.Store(nu)
	if exp > rec.exp {
		rec.exp = exp
	}
	return rec
}

// put stores a session and reports whether it is new.
func (s *memoryStore) put(h TokenHash, e memSession) bool {
	sh := s.shard(h)
	sh.mu.Lock()
	existed := sh.m.put(h, e)
	sh.mu.Unlock()
	if !existed {
		s.size.Add(1)
	}
	return !existed
}

func (s *memoryStore) CreateSession(_ context.Context, h TokenHash, user User, ttl time.Duration) (time.Time, error) {
	if user.OpenID == "" {
		return time.Time{}, errors.New("memory store: empty openid")
	}
	if ttl <= 0 {
		return time.Time{}, fmt.Errorf("memory store: session ttl must be positive, got %v", ttl)
	}
	exp := time.Now().Add(ttl).UnixNano()
	rec := s.attachUser(user, exp)
	if s.put(h, memSession{user: rec, exp: exp}) {
		s.evict()
	}
	return time.Unix(0, exp), nil
}

// evict drops the oldest sessions (those that expire first: under a
// fixed TTL, the same thing) while there are more than maxSessions. It
// keeps no eviction queue, which would cost 32 bytes per session; instead
// it scans the expiries, picks the cut-off with a selection, and removes
// a batch of 1/128 of the limit beyond what is needed, so that at 1M
// sessions the scan (a few tens of milliseconds) runs once per ~8k logins.
func (s *memoryStore) evict() {
	max := s.maxSessions.Load()
	if s.size.Load() <= max || !s.evictMu.TryLock() {
		return // under the limit, or another caller is already at it
	}
	defer s.evictMu.Unlock()
	over := s.size.Load() - max
	if over <= 0 {
		return
	}
	target := int(over + max/128)

	exps := make([]int64, 0, s.size.Load()+64)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, e := range sh.m.all() {
			exps = append(exps, e.exp)
		}
		sh.mu.RUnlock()
	}
	if target > len(exps) {
		target = len(exps)
	}
	if target == 0 {
		return
	}
	cut := selectInt64(exps, target-1)
	// Everything strictly older than the cut goes; then as many sessions
	// expiring exactly at it as are still needed.
	removed := 0
	for pass := 0; pass < 2 && removed < target; pass++ {
		for i := range s.shards {
			sh := &s.shards[i]
			ties := 0
			sh.mu.Lock()
			removed += sh.m.deleteIf(func(e memSession) bool {
				if e.exp < cut {
					return true
				}
				if pass == 1 && e.exp == cut && removed+ties < target {
					ties++
					return true
				}
				return false
			})
			sh.mu.Unlock()
		}
	}
	s.size.Add(-int64(removed))
}

// selectInt64 returns the k-th smallest of xs (0-based), reordering xs
// (Hoare's quickselect).
func selectInt64(xs []int64, k int) int64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		p := xs[lo+(hi-lo)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k]
		}
	}
	return xs[k]
}

// remove deletes the session h if it is there.
func (s *memoryStore) remove(h TokenHash) {
	sh := s.shard(h)
	sh.mu.Lock()
	ok := sh.m.del(h)
	sh.mu.Unlock()
	if ok {
		s.size.Add(-1)
	}
}

// Lookup is the hot path: one read-locked map look-up, no allocation.
func (s *memoryStore) Lookup(_ context.Context, h TokenHash) (Session, error) {
	sh := s.shard(h)
	sh.mu.RLock()
	e, ok := sh.m.get(h)
	sh.mu.RUnlock()
	if !ok || e.exp <= time.Now().UnixNano() {
		return Session{}, ErrNotFound
	}
	u := e.user.u.Load()
	if u == nil {
		return Session{}, ErrNotFound // revoked
	}
	return Session{User: *u, ExpiresAt: time.Unix(0, e.exp)}, nil
}

func (s *memoryStore) DeleteSession(_ context.Context, h TokenHash) error {
	s.remove(h)
	return nil
}

// RevokeUser kills every session of openid at once by retiring the user
// record they share; it then scans the sessions to free them and count
// them. The scan is O(sessions), fine for an admin action.
func (s *memoryStore) RevokeUser(_ context.Context, openid string) (int, error) {
	us := s.userShard(openid)
	us.mu.Lock()
	rec := us.m[openid]
	if rec != nil {
		delete(us.m, openid)
		rec.u.Store(nil) // from here on, Lookup of any of its tokens fails
	}
	us.mu.Unlock()
	if rec == nil {
		return 0, nil
	}
	now := time.Now().UnixNano()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		removed := sh.m.deleteIf(func(e memSession) bool {
			if e.user != rec {
				return false
			}
			if e.exp > now {
				n++
			}
			return true
		})
		sh.mu.Unlock()
		s.size.Add(-int64(removed))
	}
	return n, nil
}

func (s *memoryStore) BindPhone(_ context.Context, openid, phone, countryCode string) error {
	us := s.userShard(openid)
	us.mu.Lock()
	defer us.mu.Unlock()
	rec := us.m[openid]
	if rec == nil || rec.exp <= time.Now().UnixNano() {
		return ErrNotFound
	}
	nu := *rec.u.Load()
	nu.Phone, nu.CountryCode = strings.Clone(phone), strings.Clone(countryCode)
	rec.u.Store(&nu)
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

// Count scans the sessions: O(sessions) under short per-shard read locks
// (a few milliseconds at 1M). It serves a metrics gauge and the admin
// stats, not requests.
func (s *memoryStore) Count(context.Context) (int, error) {
	now := time.Now().UnixNano()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, e := range sh.m.all() {
			if e.exp > now && e.user.u.Load() != nil {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n, nil
}

// sweep drops expired and revoked sessions and users whose last session
// has expired.
func (s *memoryStore) sweep() {
	now := time.Now().UnixNano()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		removed := sh.m.deleteIf(func(e memSession) bool {
			return e.exp <= now || e.user.u.Load() == nil
		})
		sh.mu.Unlock()
		s.size.Add(-int64(removed))
	}
	for i := range s.users {
		us := &s.users[i]
		us.mu.Lock()
		for id, rec := range us.m {
			if rec.exp <= now {
				delete(us.m, id)
			}
		}
		us.mu.Unlock()
	}
	s.evict()
}

// Snapshot file format, version 1. All integers are varints (or fixed
// where noted); strings are a uvarint length and the bytes.
//
//	magic    "WXAUSNAP" (8 bytes)
//	version  uvarint (1)
//	app id   string
//	written  varint, unix ns
//	records  'U' openid unionid session_key phone country_code exp
//	         'S' token-hash (32 bytes) exp openid
//	end      'E'
//	crc32c   4 bytes, big endian, of everything above
//
// Users come before the sessions that name them. The file is replaced
// atomically, so a crash while writing leaves the previous one.
const (
	snapMagic   = "WXAUSNAP"
	snapVersion = 1
	snapMaxStr  = 4096 // no field of a WeChat user is near this long
)

var snapCRC = crc32.MakeTable(crc32.Castagnoli)

type snapWriter struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
}

func (w *snapWriter) uvarint(x uint64) {
	n := binary.PutUvarint(w.buf[:], x)
	w.w.Write(w.buf[:n])
}

func (w *snapWriter) varint(x int64) {
	n := binary.PutVarint(w.buf[:], x)
	w.w.Write(w.buf[:n])
}

func (w *snapWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.w.WriteString(s)
}

// writeSnapshot saves the live sessions to s.snapshot: a temporary file
// in the same directory (mode 0600: it holds session keys), fsync, then
// rename over the old one.
func (s *memoryStore) writeSnapshot() (err error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
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
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	crc := crc32.New(snapCRC)
	w := &snapWriter{w: bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<16)}
	now := time.Now().UnixNano()
	w.w.WriteString(snapMagic)
	w.uvarint(snapVersion)
	w.str(s.appID)
	w.varint(now)

	for i := range s.users {
		us := &s.users[i]
		// Copy under the lock, write without it: disk I/O must not
		// hold up logins.
		us.mu.Lock()
		recs := make([]struct {
			u   *User
			exp int64
		}, 0, len(us.m))
		for _, rec := range us.m {
			if u := rec.u.Load(); u != nil && rec.exp > now {
				recs = append(recs, struct {
					u   *User
					exp int64
				}{u, rec.exp})
			}
		}
		us.mu.Unlock()
		for _, r := range recs {
			w.w.WriteByte('U')
			w.str(r.u.OpenID)
			w.str(r.u.UnionID)
			w.str(r.u.SessionKey)
			w.str(r.u.Phone)
			w.str(r.u.CountryCode)
			w.varint(r.exp)
		}
	}

	type snapSession struct {
		h    TokenHash
		exp  int64
		user *memUser
	}
	var batch []snapSession
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		batch = batch[:0]
		for h, e := range sh.m.all() {
			if e.exp > now {
				batch = append(batch, snapSession{h, e.exp, e.user})
			}
		}
		sh.mu.RUnlock()
		for _, e := range batch {
			u := e.user.u.Load()
			if u == nil {
				continue
			}
			w.w.WriteByte('S')
			w.w.Write(e.h[:])
			w.varint(e.exp)
			w.str(u.OpenID)
		}
	}
	w.w.WriteByte('E')
	if err := w.w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := f.Write(sum[:]); err != nil {
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
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

var errSnapTruncated = errors.New("truncated")

type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errSnapTruncated
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errSnapTruncated
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *snapReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errSnapTruncated
		return 0
	}
	r.b = r.b[n:]
	return x
}

func (r *snapReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > snapMaxStr || n > uint64(len(r.b)) {
		r.err = errSnapTruncated
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *snapReader) hash() (h TokenHash) {
	if r.err != nil || len(r.b) < len(h) {
		r.err = errSnapTruncated
		return h
	}
	copy(h[:], r.b)
	r.b = r.b[len(h):]
	return h
}

// loadSnapshot restores the sessions of s.snapshot into the new, not yet
// shared store. A missing file is normal (first start); any other problem
// is logged and the file ignored: losing sessions logs users out, but a
// gateway that cannot start is worse.
func (s *memoryStore) loadSnapshot() {
	logger := s.logger.Load().With(zap.String("file", s.snapshot))
	data, err := os.ReadFile(s.snapshot)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		logger.Warn("ignoring unreadable session snapshot", zap.Error(err))
		return
	}
	n, err := s.restore(data)
	if err != nil {
		logger.Warn("ignoring session snapshot; it will be replaced at the next save", zap.Error(err))
		return
	}
	logger.Info("restored sessions from snapshot", zap.Int("sessions", n))
}

// restore parses a snapshot and loads it; nothing is loaded unless the
// whole file checks out.
func (s *memoryStore) restore(data []byte) (int, error) {
	if len(data) < len(snapMagic) || string(data[:len(snapMagic)]) != snapMagic {
		return 0, errors.New("not a wechat_auth session snapshot")
	}
	r := &snapReader{b: data[len(snapMagic):]}
	if v := r.uvarint(); r.err != nil {
		return 0, r.err
	} else if v != snapVersion {
		return 0, fmt.Errorf("snapshot version %d is not supported by this build (want %d)", v, snapVersion)
	}
	if len(data) < len(snapMagic)+4 {
		return 0, errSnapTruncated
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, snapCRC) != sum {
		return 0, errors.New("checksum mismatch (truncated or corrupt)")
	}
	r.b = r.b[:len(r.b)-4]
	if app := r.str(); r.err != nil {
		return 0, r.err
	} else if app != s.appID {
		return 0, fmt.Errorf("snapshot belongs to app %q, not %q", app, s.appID)
	}
	r.varint() // written at

	now := time.Now().UnixNano()
	users := make(map[string]*memUser)
	type restored struct {
		h   TokenHash
		exp int64
		rec *memUser
	}
	var sessions []restored
	for done := false; !done && r.err == nil; {
		switch tag := r.byte(); tag {
		case 'U':
			u := &User{OpenID: r.str(), UnionID: r.str(), SessionKey: r.str(), Phone: r.str(), CountryCode: r.str()}
			exp := r.varint()
			if r.err == nil && u.OpenID != "" && exp > now {
				rec := &memUser{exp: exp}
				rec.u.Store(u)
				users[u.OpenID] = rec
			}
		case 'S':
			h, exp, openid := r.hash(), r.varint(), r.str()
			if rec := users[openid]; r.err == nil && rec != nil && exp > now {
				sessions = append(sessions, restored{h, exp, rec})
			}
		case 'E':
			done = true
		default:
			if r.err == nil {
				return 0, fmt.Errorf("unknown record %q", tag)
			}
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.b) != 0 {
		return 0, errors.New("trailing data")
	}

	for id, rec := range users {
		s.userShard(id).m[id] = rec
	}
	for _, e := range sessions {
		s.put(e.h, memSession{user: e.rec, exp: e.exp})
	}
	s.evict() // a smaller max_sessions than before the restart
	return int(s.size.Load()), nil
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
