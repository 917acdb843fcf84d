package memorystore

import (
	"context"
	"time"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// BindPhone records the phone on the record every session of the user
// shares, then writes it. A binding whose write fails is answered 503
// and must change nothing, so it then takes its phone back (unbind).
//
// It takes its turn among the changes of the user (userLocks, undo.go),
// holding its lock from its change in memory until its write is done (or
// taken back): the phone a failed binding restores is then never that of
// another binding still writing, which may fail too.
func (s *sharedStore) BindPhone(_ context.Context, openid, phone, countryCode string) error {
	l := s.turns.of(openid)
	l.Lock()
	defer l.Unlock()

	s.mu.Lock()
	rec := s.users[openid]
	if rec == nil || rec.expired(time.Now()) {
		s.mu.Unlock()
		return store.ErrNotFound
	}
	before := rec.u.Load().user()
	u := before
	u.Phone, u.CountryCode = phone, countryCode
	p, err := packUser(u)
	if err == nil {
		s.storeUser(rec, p)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	err = s.disk.write(func(w *diskWriter) error { return w.user(openid) })
	if err != nil {
		s.unbind(rec, u, before)
	}
	return err
}

// unbind takes back the phone of bound, a binding of rec whose write
// failed, restoring that of before. It takes back the phone only, and
// only while rec still carries it: a record that a revoke or the end of
// its last session took away has taken the phone with it. (The other
// changes of the user wait for their turn, so none is made since.)
//
// Then the record is written again, as memory now holds it: a write of
// the user in a transaction of its own (a login's, the background
// queue's) may have put the phone on disk meanwhile. Its error is left
// out: the binding is answered with its own, and a failing disk is in
// the log already (diskhealth.go).
func (s *sharedStore) unbind(rec *memUser, bound, before store.User) {
	if bound.Phone == before.Phone && bound.CountryCode == before.CountryCode {
		return // a binding of the same number changed nothing
	}
	openid := bound.OpenID
	s.mu.Lock()
	cur := rec.u.Load()
	if cur == nil || s.users[openid] != rec {
		s.mu.Unlock()
		return
	}
	u := cur.user()
	if u.Phone != bound.Phone || u.CountryCode != bound.CountryCode {
		s.mu.Unlock()
		return
	}
	u.Phone, u.CountryCode = before.Phone, before.CountryCode
	p, err := packUser(u) // (cannot fail: every field was packed before)
	if err == nil {
		s.storeUser(rec, p)
	}
	s.mu.Unlock()
	if err == nil {
		_ = s.disk.write(func(w *diskWriter) error { return w.user(openid) })
	}
}
