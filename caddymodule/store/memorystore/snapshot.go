package memorystore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/patrickmn/go-cache"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

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
	store.User
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
	users := make([]store.User, 0, len(s.users))
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
			if err := enc.Encode(snapRecord{User: store.User{OpenID: u.openID()}, Hash: []byte(k), Expires: it.Expiration}); err != nil {
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
		case rec != nil && len(r.Hash) == len(store.TokenHash{}) && r.Expires > now:
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
