package memorystore

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// memView is what the persist file is written from: the store's memory,
// read one key at a time (the disk writer) or whole (dump). It is the one
// boundary between memory and disk: nothing on the disk side reads the
// store's fields.
type memView interface {
	// liveSession returns the user and expiry of the session th (32
	// bytes) when memory holds it live: not expired, not revoked.
	liveSession(th []byte) (*packedUser, time.Time, bool)
	// userOf returns memory's user record of openid; nil when it has
	// none (no live session left, or revoked).
	userOf(openid string) *packedUser
	// prevKeyOf returns the previous session key of openid and when it
	// expires, while memory holds it and a record of the user.
	prevKeyOf(openid string) (string, time.Time, bool)
}

func (s *sharedStore) liveSession(th []byte) (*packedUser, time.Time, bool) {
	v, exp, ok := s.shards[th[0]].GetWithExpiration(string(th))
	if !ok {
		return nil, time.Time{}, false
	}
	u := v.(*memUser).u.Load()
	return u, exp, u != nil
}

func (s *sharedStore) userOf(openid string) *packedUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.users[openid]; rec != nil {
		return rec.u.Load()
	}
	return nil
}

func (s *sharedStore) prevKeyOf(openid string) (string, time.Time, bool) {
	v, exp, ok := s.prevKeys.GetWithExpiration(openid)
	if !ok {
		return "", time.Time{}, false
	}
	s.mu.Lock()
	has := s.users[openid] != nil
	s.mu.Unlock()
	return v.(string), exp, has
}

// userIDs returns the openids memory has a user record of, in the order
// of their keys in the file.
func (s *sharedStore) userIDs() []string {
	s.mu.Lock()
	ids := make([]string, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.SortFunc(ids, cmpUserKey)
	return ids
}

// prevKeyIDs returns the openids memory holds a previous key of, in the
// order of their keys in the file.
func (s *sharedStore) prevKeyIDs() []string {
	items := s.prevKeys.Items()
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmpUserKey)
	return ids
}

// sessionRef names a live session by strings memory already holds: the
// openid of its user and its token hash.
type sessionRef struct{ openid, th string }

// sessionRefs returns the live sessions in memory, in the order of their
// keys in the file (by user, then token hash), one shard at a time.
func (s *sharedStore) sessionRefs() []sessionRef {
	refs := make([]sessionRef, 0, s.size.Load())
	for _, sh := range s.shards {
		for th, it := range sh.Items() {
			if u := it.Object.(*memUser).u.Load(); u != nil {
				refs = append(refs, sessionRef{u.openID(), th})
			}
		}
	}
	slices.SortFunc(refs, func(a, b sessionRef) int {
		return cmp.Or(cmpUserKey(a.openid, b.openid), strings.Compare(a.th, b.th))
	})
	return refs
}

// Interface guard
var _ memView = (*sharedStore)(nil)
