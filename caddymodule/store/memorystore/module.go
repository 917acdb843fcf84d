// Package memorystore is the memory session store of wechat_auth
// (wechat_auth.stores.memory, the default): sessions live in this Caddy
// process, survive `caddy reload`, and with persist also a restart.
package memorystore

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/internal/caddyconf"
	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// DefaultMaxSessions is the default limit of live sessions of one app.
const DefaultMaxSessions = 1000000

// maxMaxSessions bounds max_sessions: far beyond what one process should
// hold (about 300 bytes each), and small enough to catch a typo.
const maxMaxSessions = 100_000_000

// pool holds one store per app id and snapshot file, so that a config
// reload with the same app id finds the sessions of the config it
// replaces. Two app ids never share an entry.
var pool = caddy.NewUsagePool()

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
	// it the oldest sessions are dropped. Default: 1000000 (about 300 MB
	// of heap when every session belongs to a different user).
	MaxSessions int `json:"max_sessions,omitempty"`

	// Snapshot is a file the sessions are saved to every minute and when
	// the store is released (on shutdown), and loaded from when it is
	// opened, so that a restart keeps every session. Placeholders such as
	// {env.*} are resolved at provision. Default: none (a restart logs
	// everyone out).
	//
	// The file holds token hashes, which grant nothing, but also every
	// user's WeChat session_key: it is written with mode 0600 and must be
	// protected like a private key. One file per app id.
	Snapshot string `json:"snapshot,omitempty"`

	logger   *zap.Logger
	snapshot string // Snapshot resolved and made absolute
	keys     []poolKey
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  store.Namespace + ".memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision applies defaults and resolves the snapshot path.
func (m *MemoryStore) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	if m.MaxSessions == 0 {
		m.MaxSessions = DefaultMaxSessions
	}
	if m.Snapshot != "" {
		snap, err := caddyconf.Resolve(caddy.NewReplacer(), "snapshot", m.Snapshot)
		if err != nil {
			return err
		}
		if snap == "" {
			return fmt.Errorf("snapshot %q resolves to an empty path", m.Snapshot)
		}
		if m.snapshot, err = filepath.Abs(snap); err != nil {
			return fmt.Errorf("snapshot: %v", err)
		}
	}
	return nil
}

// Validate checks the configuration.
func (m *MemoryStore) Validate() error {
	return caddyconf.CheckInt("max_sessions", m.MaxSessions, 1, maxMaxSessions)
}

type poolKey struct{ appID, snapshot string }

// Open returns the memory store of appID, creating it (and loading the
// snapshot) if no loaded config holds it yet.
func (m *MemoryStore) Open(ctx caddy.Context, appID string) (store.Store, error) {
	if appID == "" {
		return nil, errors.New("memory store: empty app id")
	}
	key := poolKey{appID: appID, snapshot: m.snapshot}

	// Two apps writing one snapshot file would overwrite each other's
	// sessions every minute; refuse it at config load.
	if m.snapshot != "" {
		var clash string
		pool.Range(func(k, _ any) bool {
			if pk := k.(poolKey); pk.snapshot == m.snapshot && pk.appID != appID {
				clash = pk.appID
				return false
			}
			return true
		})
		if clash != "" {
			return nil, fmt.Errorf("memory store: snapshot file %s is already used by app %s", m.snapshot, clash)
		}
	}

	val, loaded, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newMemoryStore(appID, m.snapshot, m.MaxSessions, m.logger), nil
	})
	if err != nil {
		return nil, err
	}
	s := val.(*memoryStore)
	if loaded {
		// A reload: the newest config's settings and logger win.
		s.maxSessions.Store(int64(m.MaxSessions))
		s.logger.Store(m.logger)
		s.trimToLimit()
	}
	m.keys = append(m.keys, key)
	return s, nil
}

// Cleanup releases the stores opened by this module. The last config
// holding a store stops its janitor and writes its snapshot.
func (m *MemoryStore) Cleanup() error {
	err := caddyconf.ReleaseAll(pool, m.keys)
	m.keys = nil
	return err
}

// Interface guards
var (
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.Validator    = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
	_ store.Module       = (*MemoryStore)(nil)
)
