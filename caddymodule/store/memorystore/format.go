package memorystore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"time"

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
//	          "journal" the id of its journal (16 bytes, journal.go)
//	          "folded"  the last generation of the journal folded in
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
// Changes reach these buckets through the journal (journal.go, fold.go):
// a start replays what the last run left unfolded before it loads.
//
// Loading walks users and sessions side by side, both in U order: no
// look-up per session. A revoke deletes the user's record and sessions in
// one range, so nothing of a revoked user can be restored.
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

// sessionValue is the value of a sessions record: the session expires at
// exp.
func sessionValue(k []byte, exp time.Time) []byte {
	b := make([]byte, 4+8)
	binary.BigEndian.PutUint64(b[4:], uint64(exp.UnixNano()))
	return sealRecord(k, b)
}

// userValue is the value of the users record of p (its key is
// userKey(p.openID())).
func userValue(k []byte, p *packedUser) []byte {
	fields := p.buf[p.lens[0]:] // session key, unionid, phone, country code
	b := make([]byte, 4+3, 4+3+len(fields))
	copy(b[4:], p.lens[1:])
	b = append(b, fields...)
	return sealRecord(k, b)
}

// prevKeyValue is the value of a prevkeys record: key, until exp.
func prevKeyValue(k []byte, key string, exp time.Time) []byte {
	b := make([]byte, 4+8, 4+8+len(key))
	binary.BigEndian.PutUint64(b[4:], uint64(exp.UnixNano()))
	b = append(b, key...)
	return sealRecord(k, b)
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

// cmpUserKey orders openids as their U keys sort: by length, then bytes.
func cmpUserKey(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
