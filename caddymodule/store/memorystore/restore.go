package memorystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/patrickmn/go-cache"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// Starting from a persist file and moving to another: what a start finds
// at the path (ours, or something to set aside), loading it into memory,
// writing memory out to a new file, and a reload that adds, moves or
// removes persist. The file's format is in format.go, the writes that
// follow each change in persist.go and writer.go.

// openAtStart gives a new store its persist file: it loads ours, sets
// anything else aside, and starts a new file where there is none. A file
// it cannot make sense of costs the sessions in it, never the start of the
// gateway; only a path it cannot use at all (a directory, no permission, a
// file locked by another process) is an error.
func (s *sharedStore) openAtStart(path string) error {
	logger := s.logger.Load().With(zap.String("file", path))
	v, reason, why, err := identify(path, s.appID)
	if err != nil {
		return fmt.Errorf("memory store: persist file %s: %w", path, err)
	}
	if v == fileOurs {
		f, err := openBolt(path, false)
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("memory store: persist file %s: %w", path, errInUse)
		}
		if err == nil {
			t0 := time.Now()
			var restored int
			var unfolded unfoldedJournal
			var aside string
			unfolded, aside, err = readUnfolded(path, f)
			if aside != "" {
				logger.Warn("a journal of another persist file was set aside", zap.String("moved_to", aside))
			}
			if err == nil {
				restored, err = s.load(f)
			}
			if err == nil && len(unfolded.payloads) > 0 {
				// What a crash left in the journal goes into the file,
				// once the file has shown it is sound (a damaged file
				// is set aside as it was), and the file is loaded again.
				s.resetMemory()
				if err = unfolded.replay(f); err == nil {
					restored, err = s.load(f)
				}
			}
			if err == nil {
				j, err := startJournal(path, f, unfolded.id, unfolded.next, defaultRegionSize)
				if err != nil {
					// The file is good: a start that cannot write (a
					// full disk) fails rather than set it aside.
					f.Close()
					s.resetMemory()
					return fmt.Errorf("memory store: persist file %s: starting its journal: %w", path, err)
				}
				s.disk.swap(&diskFile{db: f, j: j, path: path})
				logger.Info("restored sessions", zap.Int("sessions", restored), zap.Duration("took", time.Since(t0)))
				return nil
			}
			f.Close()
			s.resetMemory()
		}
		v, reason, why = fileSetAside, "corrupt", err
	}
	_, err = s.replaceFile(path, v != fileMissing, reason, func(to string) {
		logger.Error("persist file set aside; starting with no sessions",
			zap.String("reason", reason), zap.NamedError("problem", why), zap.String("moved_to", to))
	})
	return err
}

// replaceFile makes a new persist file at path the store's, written from
// memory, and returns the file it replaces (nil: none). What is at path
// (present) is set aside first under reason, and logAside is told its new
// name. If memory cannot be written out, the old file is the store's
// again and the new one is closed: the store is as it was.
func (s *sharedStore) replaceFile(path string, present bool, reason string, logAside func(to string)) (*diskFile, error) {
	if present {
		to, err := setAside(path, reason)
		if err != nil {
			return nil, fmt.Errorf("memory store: setting %s aside: %v", path, err)
		}
		logAside(to)
		// Its journal goes with it, beside it: its changes are that
		// file's, never the new one's.
		if err := setJournalAside(path, to); err != nil {
			return nil, fmt.Errorf("memory store: setting the journal of %s aside: %v", path, err)
		}
	}
	nf, err := createFile(path, s.appID)
	if err != nil {
		return nil, fmt.Errorf("memory store: creating persist file %s: %v", path, err)
	}
	// The new file is the store's before the dump: changes made meanwhile
	// are written by their own calls (see dump).
	old := s.disk.swap(nf)
	if err := s.dump(nf); err != nil {
		s.disk.swap(old)
		nf.close() // (releases its lock)
		return nil, fmt.Errorf("memory store: writing persist file %s: %v", path, err)
	}
	return old, nil
}

// resetMemory empties a store whose load failed half way.
func (s *sharedStore) resetMemory() {
	s.mu.Lock()
	s.users = make(map[string]*memUser)
	s.revoked = 0
	s.mu.Unlock()
	s.setShards(nil)
	s.prevKeys.Flush()
}

// load fills the new store from f, walking users and sessions side by side
// (both are in U order). Sessions that expired or whose user record is
// gone, users without a session and stale previous keys are left out, and
// queued for removal from the file. Any damage (a bad checksum, a
// malformed record, a page bbolt cannot read) fails it as a whole.
func (s *sharedStore) load(f *bolt.DB) (int, error) {
	now := time.Now().UnixNano()
	// Sessions are read in U order, which scatters them over the shards;
	// they are gathered per shard first and each shard's map is then made
	// in one go, in cache, two shards at a time.
	type loaded struct {
		th  string
		rec *memUser
		exp int64
	}
	var byShard [numShards][]loaded
	var items [numShards]map[string]cache.Item
	var recs []*memUser // users with sessions, for s.users
	var prev map[string]cache.Item
	var stale, staleUsers, stalePrev []string
	n := 0
	err := safeView(f, func(tx *bolt.Tx) error {
		users, sessions, prevKeys := tx.Bucket(bucketUsers), tx.Bucket(bucketSessions), tx.Bucket(bucketPrevKeys)
		if users == nil || sessions == nil || prevKeys == nil {
			return errors.New("a bucket is missing")
		}
		// Made at their final size, first: growing them record by record
		// would cost more than filling them (Stats reads pages, not
		// records), and the GC, seeing the heap grow at once, runs fewer
		// cycles while the records come in.
		nUsers := users.Stats().KeyN
		s.users = make(map[string]*memUser, nUsers)
		recs = make([]*memUser, 0, nUsers)
		perShard := sessions.Stats().KeyN / numShards
		for i := range byShard {
			byShard[i] = make([]loaded, 0, perShard+perShard/8)
			items[i] = make(map[string]cache.Item, perShard+perShard/8)
		}
		prev = make(map[string]cache.Item, prevKeys.Stats().KeyN)

		sc := sessions.Cursor()
		sk, sv := sc.First()
		// sessionsOf adds the sessions under U to rec (nil: the orphans
		// before U), and leaves sk at the first key past them.
		sessionsOf := func(u []byte, rec *memUser) error {
			for ; sk != nil; sk, sv = sc.Next() {
				ku, th, ok := splitSessionKey(sk)
				if !ok {
					return errors.New("a session key is malformed")
				}
				if c := bytes.Compare(ku, u); c > 0 || (c == 0 && rec == nil) {
					return nil
				}
				exp, _, err := decodeExpiry(sk, sv)
				if err != nil {
					return err
				}
				if rec == nil || exp <= now {
					stale = append(stale, string(sk))
					continue
				}
				byShard[th[0]] = append(byShard[th[0]], loaded{th: string(th), rec: rec, exp: exp})
				rec.n++
				rec.exp = max(rec.exp, unixCeil(time.Unix(0, exp)))
				n++
			}
			return nil
		}
		uc := users.Cursor()
		for uk, uv := uc.First(); uk != nil; uk, uv = uc.Next() {
			p, err := decodeUser(uk, uv)
			if err != nil {
				return err
			}
			if err := sessionsOf(uk, nil); err != nil { // orphans before it
				return err
			}
			rec := &memUser{}
			rec.u.Store(p)
			if err := sessionsOf(uk, rec); err != nil {
				return err
			}
			if rec.n == 0 {
				staleUsers = append(staleUsers, p.openID())
				continue
			}
			recs = append(recs, rec)
		}
		for ; sk != nil; sk, sv = sc.Next() { // orphans after the last user
			if _, _, err := decodeExpiry(sk, sv); err != nil {
				return err
			}
			stale = append(stale, string(sk))
		}

		c := prevKeys.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			exp, key, err := decodeExpiry(k, v)
			if err != nil {
				return err
			}
			if len(k) < 1 || int(k[0]) != len(k)-1 {
				return errors.New("a previous-key record is malformed")
			}
			if exp <= now {
				stalePrev = append(stalePrev, string(k[1:]))
				continue
			}
			prev[string(k[1:])] = cache.Item{Object: string(key), Expiration: exp}
			// (whether its user has sessions is known once s.users is made)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the users map, beside the shards' maps
		defer wg.Done()
		for _, rec := range recs {
			id := rec.u.Load().openID()
			s.users[id] = rec
		}
	}()
	for half := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := half; i < numShards; i += 2 {
				m := items[i]
				for _, l := range byShard[i] {
					m[l.th] = cache.Item{Object: l.rec, Expiration: l.exp}
				}
				byShard[i] = nil
			}
		}()
	}
	wg.Wait()
	for id := range prev {
		if s.users[id] == nil {
			delete(prev, id)
			stalePrev = append(stalePrev, id)
		}
	}
	s.setShards(&items)
	s.prevKeys = cache.NewFrom(cache.NoExpiration, 0, prev)
	s.prevKeys.OnEvicted(s.prevKeyRemoved)
	s.disk.qSessions, s.disk.qUsers, s.disk.qPrevKeys = stale, staleUsers, stalePrev
	return n, nil
}

// dump writes every user, session and previous key in memory to f, a new
// file, in key order (bbolt then fills its pages), a chunk per
// transaction. f is already the store's persist file: changes made
// meanwhile are written by their own calls, and each record written here
// is what memory holds at the time, so the two never disagree.
func (s *sharedStore) dump(f *diskFile) error {
	const chunk = 20000
	write := func(n int, put func(*diskWriter, int) error) error {
		for start := 0; start < n; start += chunk {
			err := f.db.Update(func(tx *bolt.Tx) error {
				w := newDiskWriter(s, tx)
				w.bulk()
				for i := start; i < min(n, start+chunk); i++ {
					if err := put(w, i); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}

	ids := s.userIDs()
	if err := write(len(ids), func(w *diskWriter, i int) error { return w.user(ids[i]) }); err != nil {
		return err
	}
	ids = s.prevKeyIDs()
	if err := write(len(ids), func(w *diskWriter, i int) error { return w.prevKey(ids[i]) }); err != nil {
		return err
	}
	// Sessions as (openid, hash) pairs of strings memory already holds:
	// nothing is copied until it is written.
	refs := s.sessionRefs()
	return write(len(refs), func(w *diskWriter, i int) error {
		return w.sessionAt(sessionKey(refs[i].openid, []byte(refs[i].th)))
	})
}

// usePersist makes path the store's persist file ("": none) while the
// store is live: a reload added, moved or removed persist. Memory holds
// the newest state, so whatever file is at the new path is set aside (it
// would bring back sessions logged out since it was written) and a new one
// is written from memory before usePersist returns. The file left behind
// is closed and set aside too: it stops following the sessions, and a
// later start must not restore it.
func (s *sharedStore) usePersist(path string) error {
	if path == s.disk.path() {
		return nil
	}
	logger := s.logger.Load()
	var old *diskFile
	if path == "" {
		old = s.disk.swap(nil)
	} else {
		v, _, _, err := identify(path, s.appID)
		if err != nil {
			return fmt.Errorf("memory store: persist file %s: %w", path, err)
		}
		t0 := time.Now()
		old, err = s.replaceFile(path, v != fileMissing, "stale", func(to string) {
			logger.Warn("persist file set aside: the sessions in memory are newer",
				zap.String("file", path), zap.String("moved_to", to))
		})
		if err != nil {
			return err
		}
		n, _ := s.Count(context.Background())
		logger.Info("persisting sessions", zap.String("file", path), zap.Int("sessions", n), zap.Duration("took", time.Since(t0)))
	}
	if old != nil {
		if err := old.close(); err != nil {
			logger.Error("closing the persist file", zap.String("file", old.path), zap.Error(err))
		}
		to, err := setAside(old.path, "unused")
		if err == nil {
			err = setJournalAside(old.path, to)
		}
		if err != nil {
			logger.Error("setting the persist file no longer used aside", zap.String("file", old.path), zap.Error(err))
		} else {
			logger.Warn("persist file no longer used by the config: set aside so that a later start does not restore it",
				zap.String("file", old.path), zap.String("moved_to", to))
		}
	}
	return nil
}
