// Package memorystore is the memory session store of wechat_auth
// (wechat_auth.stores.memory, the default): sessions live in this Caddy
// process, survive `caddy reload`, and with persist also a restart.
package memorystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

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

// stores holds one store per app id, whatever its settings, so that a
// config reload finds the sessions of the config it replaces, and two
// sites of one app share them. Two app ids never share an entry.
var stores = caddy.NewUsagePool()

// files holds a claim on each persist file in use, so that two apps never
// write one file: fileClaim, keyed by the absolute path.
var files = caddy.NewUsagePool()

type fileClaim struct{ appID string }

func (fileClaim) Destruct() error { return nil }

// MemoryStore keeps sessions in the memory of this Caddy process. They
// survive `caddy reload` (the store lives in a caddy.UsagePool keyed by app
// id) and, when Persist is set, a restart. They are not shared between
// gateways: run several instances with the redis store.
//
// Sessions have a fixed TTL (they are not extended by use). When
// MaxSessions is reached, the oldest sessions are dropped to make room: a
// login never fails because the store is full.
//
// An app has one memory store: sites of one config that use the same app
// id share it, and must give it the same settings. A reload may change
// them (the newest config's settings apply).
type MemoryStore struct {
	// MaxSessions caps the number of sessions kept for the app; beyond
	// it the oldest sessions are dropped, in the background (logins made
	// meanwhile may overshoot it briefly). Default: 1000000 (about 300 MB
	// of heap when every session belongs to a different user).
	MaxSessions int `json:"max_sessions,omitempty"`

	// Persist is a file (a bbolt database) that keeps the sessions across
	// a restart: every login, logout, revoke, phone binding and key
	// rotation is written to it before it is answered, expired sessions
	// leave it in the background, and it is loaded at start. Pass-through
	// never reads it. Placeholders such as {env.*} are resolved at
	// provision. Default: none (a restart logs everyone out).
	//
	// A file at the path that is not a persist file of this app (another
	// program's, another app's, a newer version's, or a damaged one) is
	// set aside, renamed to <file>.<reason>-<time>, never overwritten or
	// deleted; the gateway then starts with no sessions. A reload that
	// adds, moves or removes Persist keeps every session; the file it
	// stops using is set aside the same way.
	//
	// The file holds token hashes, which grant nothing, but also every
	// user's WeChat session_key: it is created with mode 0600 and must be
	// protected like a private key. One file per app id.
	Persist string `json:"persist,omitempty"`

	logger *zap.Logger
	path   string // Persist resolved and made absolute
	held   []held
}

// held is a store this module opened, as one of its holders.
type held struct {
	appID string
	s     *sharedStore
	h     *holder
}

// holder is one use of a store by a config, with the settings it gives.
type holder struct {
	cfg         <-chan struct{} // the config's ctx.Done(): every module of one config load shares it
	path        string
	maxSessions int
	logger      *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  store.Namespace + ".memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Provision applies defaults and resolves the persist path.
func (m *MemoryStore) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	if m.MaxSessions == 0 {
		m.MaxSessions = DefaultMaxSessions
	}
	if m.Persist != "" {
		resolved, err := caddyconf.Resolve(caddy.NewReplacer(), "persist", m.Persist)
		if err != nil {
			return err
		}
		if resolved == "" {
			return fmt.Errorf("persist %q resolves to an empty path", m.Persist)
		}
		if m.path, err = filepath.Abs(resolved); err != nil {
			return fmt.Errorf("persist: %v", err)
		}
	}
	return nil
}

// Validate checks the configuration.
func (m *MemoryStore) Validate() error {
	return caddyconf.CheckInt("max_sessions", m.MaxSessions, 1, maxMaxSessions)
}

// Open returns the memory store of appID, creating it (and loading its
// persist file) if no loaded config holds it yet.
func (m *MemoryStore) Open(ctx caddy.Context, appID string) (store.Store, error) {
	if appID == "" {
		return nil, errors.New("memory store: empty app id")
	}
	if m.path != "" {
		// Two apps writing one file would destroy each other's sessions.
		v, loaded := files.LoadOrStore(m.path, fileClaim{appID: appID})
		if c := v.(fileClaim); loaded && c.appID != appID {
			files.Delete(m.path)
			return nil, fmt.Errorf("memory store: persist file %s is already used by app %s; each app needs a file of its own", m.path, c.appID)
		}
	}
	val, _, err := stores.LoadOrNew(appID, func() (caddy.Destructor, error) {
		s := newSharedStore(appID, m.MaxSessions, m.logger)
		if m.path != "" {
			if err := s.openAtStart(m.path); err != nil {
				return nil, err
			}
		}
		s.start()
		return s, nil
	})
	if err != nil {
		m.releaseFile()
		return nil, err
	}
	s := val.(*sharedStore)
	h := &holder{cfg: ctx.Done(), path: m.path, maxSessions: m.MaxSessions, logger: m.logger}
	if err := s.hold(h); err != nil {
		stores.Delete(appID)
		m.releaseFile()
		return nil, err
	}
	m.held = append(m.held, held{appID: appID, s: s, h: h})
	return s, nil
}

func (m *MemoryStore) releaseFile() {
	if m.path != "" {
		files.Delete(m.path)
	}
}

// Cleanup releases the stores opened by this module. The last config
// holding a store stops its housekeeping and closes its persist file.
func (m *MemoryStore) Cleanup() error {
	var errs []error
	for _, hd := range m.held {
		hd.s.release(hd.h)
		if _, err := stores.Delete(hd.appID); err != nil {
			errs = append(errs, err)
		}
		m.releaseFile()
	}
	m.held = nil
	return errors.Join(errs...)
}

// hold adds a config's use of the store and applies its settings: the
// newest config's settings are the store's. Two sites of one config that
// give the app's store different settings are a config error: which one
// would apply is not for the order of the sites to decide.
func (s *sharedStore) hold(h *holder) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	for _, o := range s.holders {
		if o.cfg != h.cfg {
			continue
		}
		if o.path != h.path {
			return fmt.Errorf("memory store of app %s: two sites set persist differently (%q and %q); an app has one store: give them the same settings",
				s.appID, o.path, h.path)
		}
		if o.maxSessions != h.maxSessions {
			return fmt.Errorf("memory store of app %s: two sites set max_sessions differently (%d and %d); an app has one store: give them the same settings",
				s.appID, o.maxSessions, h.maxSessions)
		}
	}
	if err := s.apply(h); err != nil {
		return err
	}
	s.holders = append(s.holders, h)
	return nil
}

// release drops a config's use of the store. When the config that remains
// newest gives other settings (a reload that failed after the store was
// opened for it), they apply again.
func (s *sharedStore) release(h *holder) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	i := slices.Index(s.holders, h)
	if i < 0 {
		return
	}
	s.holders = slices.Delete(s.holders, i, i+1)
	if i == len(s.holders) && len(s.holders) > 0 {
		if err := s.apply(s.holders[len(s.holders)-1]); err != nil {
			s.logger.Load().Error("restoring the memory store's settings", zap.Error(err))
		}
	}
}

// apply makes h's settings the store's. The caller holds cfgMu.
func (s *sharedStore) apply(h *holder) error {
	prev := s.logger.Swap(h.logger)
	if err := s.usePersist(h.path); err != nil {
		s.logger.Store(prev) // (h's config fails: its logger goes with it)
		return err
	}
	s.maxSessions.Store(int64(h.maxSessions))
	s.kickTrim() // a smaller max_sessions than before
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner  = (*MemoryStore)(nil)
	_ caddy.Validator    = (*MemoryStore)(nil)
	_ caddy.CleanerUpper = (*MemoryStore)(nil)
	_ store.Module       = (*MemoryStore)(nil)
)
