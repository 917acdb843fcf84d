package memorystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/patrickmn/go-cache"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Earlier versions of the plugin saved the sessions every minute to a
// snapshot file (the subdirective was called snapshot):
//
//	caddy-wechat-auth snapshot 1 "<app id>"\n
//	gob legacyRecord...
//	sha256 (32 bytes)
//
// Such a file, met at the persist path at start, is loaded once, set
// aside (renamed: never deleted) and replaced by a persist file
// (openAtStart). Nothing writes this format any more.
const legacyVersion = 1

// legacyRecord is a user (no Hash) or a session of the user named by
// OpenID.
type legacyRecord struct {
	store.User
	Hash    []byte
	Expires int64 // unix ns
}

// legacyError says why a snapshot file cannot be loaded, with the word
// the file is set aside under.
type legacyError struct {
	reason string
	err    error
}

func (e *legacyError) Error() string { return e.err.Error() }
func (e *legacyError) Unwrap() error { return e.err }

func legacyErr(reason, format string, args ...any) error {
	return &legacyError{reason: reason, err: fmt.Errorf(format, args...)}
}

// loadLegacy fills the new store from the snapshot file at path, leaving
// out expired sessions and users without a session, and returns how many
// sessions it restored.
func (s *memoryStore) loadLegacy(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || len(body) < sha256.Size {
		return 0, legacyErr("corrupt", "snapshot file: truncated")
	}
	var version int
	var app string
	if _, err := fmt.Sscanf(string(header), legacyMagic+" %d %q", &version, &app); err != nil {
		return 0, legacyErr("corrupt", "snapshot file: bad header: %v", err)
	}
	if version != legacyVersion {
		return 0, legacyErr("future-version", "snapshot file version %d is not supported by this build", version)
	}
	if got := sha256.Sum256(data[:len(data)-sha256.Size]); !bytes.Equal(got[:], data[len(data)-sha256.Size:]) {
		return 0, legacyErr("corrupt", "snapshot file: checksum mismatch (truncated or corrupt)")
	}
	if app != s.appID {
		return 0, legacyErr("foreign", "snapshot file belongs to app %q, not %q", app, s.appID)
	}

	now := time.Now().UnixNano()
	var items [numShards]map[string]cache.Item
	n := 0
	dec := gob.NewDecoder(bytes.NewReader(body[:len(body)-sha256.Size]))
	for {
		var r legacyRecord
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, legacyErr("corrupt", "snapshot file: %v", err)
		}
		switch rec := s.users[r.OpenID]; {
		case r.Hash == nil:
			p, err := packUser(r.User)
			if err != nil {
				return 0, legacyErr("corrupt", "snapshot file: %v", err)
			}
			s.storeUser(&memUser{}, p)
		case rec != nil && len(r.Hash) == len(store.TokenHash{}) && r.Expires > now:
			m := items[r.Hash[0]]
			if m == nil {
				m = make(map[string]cache.Item)
				items[r.Hash[0]] = m
			}
			m[string(r.Hash)] = cache.Item{Object: rec, Expiration: r.Expires}
			rec.n++
			rec.exp = max(rec.exp, unixCeil(time.Unix(0, r.Expires)))
			n++
		}
	}
	for id, rec := range s.users {
		if rec.n == 0 {
			delete(s.users, id)
		}
	}
	s.setShards(&items)
	return n, nil
}
