package memorystore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Finding out what is at a persist path, setting aside what is not ours,
// and opening or creating the file (the format is in format.go).

// lockWait is how long opening the file waits for another process that
// holds it (bbolt locks the file) before giving up with an error.
const lockWait = 3 * time.Second

// fileVerdict is what identify found at a persist path.
type fileVerdict int

const (
	fileMissing  fileVerdict = iota
	fileOurs                 // a persist file of this app and version
	fileSetAside             // anything else: set it aside, never overwrite it
)

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
	return db, nil
}

// safeView runs fn in a read transaction, turning a panic (bbolt meeting a
// damaged page) or a memory fault (a page beyond the end of a truncated
// file) into an error.
func safeView(db *bolt.DB, fn func(*bolt.Tx) error) error { return safely(db.View, fn) }

// safeUpdate is safeView for a write transaction (the replay of a journal
// into a file that may be damaged).
func safeUpdate(db *bolt.DB, fn func(*bolt.Tx) error) error { return safely(db.Update, fn) }

func safely(run func(func(*bolt.Tx) error) error, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged: %v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return run(fn)
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

// setJournalAside moves the journal of the persist file that was at path,
// if it has one, beside the file now at to: to + "-journal".
func setJournalAside(path, to string) error {
	err := os.Rename(journalPath(path), journalPath(to))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	syncDir(filepath.Dir(path))
	return err
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
	var id [16]byte
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(metaJournal, id[:]); err != nil {
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
	// A journal without its file (the file deleted by hand) is not
	// this file's: set it aside rather than replay or overwrite it.
	jp := journalPath(path)
	if _, err := os.Lstat(jp); err == nil {
		if _, err := setAside(jp, "orphan"); err != nil {
			db.Close()
			return nil, err
		}
	}
	j, err := startJournal(path, db, id, 1, defaultRegionSize)
	if err != nil {
		db.Close()
		return nil, err
	}
	syncDir(dir)
	return &diskFile{db: db, j: j, path: path}, nil
}
