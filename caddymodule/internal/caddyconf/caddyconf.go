// Package caddyconf holds the few steps every module of caddy-wechat-auth
// takes the same way: reading Caddyfile arguments, checking a value's
// range (at `caddy adapt` through the Caddyfile and again in Validate for
// JSON configs), resolving placeholders, keeping secrets unprintable, and
// releasing usage-pool entries.
package caddyconf

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// OneArg reads exactly one argument of the current subdirective.
func OneArg(d *caddyfile.Dispenser, dst *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs one argument", sub)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one argument, got another: %q", sub, d.Val())
	}
	return nil
}

// NoArgs checks that a flag subdirective has no argument.
func NoArgs(d *caddyfile.Dispenser) error {
	sub := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no arguments, got %q", sub, d.Val())
	}
	return nil
}

// Range bounds a duration setting. Zero means "off" where ZeroOff is set,
// and "use the default" otherwise (a JSON config that leaves it out).
type Range struct {
	Min, Max time.Duration
	ZeroOff  bool
}

// Check reports a value out of range, naming the setting.
func (r Range) Check(name string, v time.Duration) error {
	switch {
	case v == 0:
		return nil
	case v < 0:
		return fmt.Errorf("%s must not be negative, got %v", name, v)
	case v < r.Min || v > r.Max:
		off := ""
		if r.ZeroOff {
			off = ", or 0 for off"
		}
		return fmt.Errorf("%s must be between %v and %v%s, got %v", name, r.Min, r.Max, off, v)
	}
	return nil
}

// Duration reads one duration argument within r ("off" reads as 0 where
// r allows it). Zero is refused unless it means "off": in a Caddyfile it
// is never a way to ask for the default.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration, r Range) error {
	sub := d.Val()
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	if s == "off" && r.ZeroOff {
		*dst = 0
		return nil
	}
	v, err := ParseDuration(d, sub, s, r)
	if err == nil {
		*dst = v
	}
	return err
}

// ParseDuration reads s, the argument of the setting named name, as a
// duration within r: a further argument of a directive (Duration reads
// a setting's only one).
func ParseDuration(d *caddyfile.Dispenser, name, s string, r Range) (caddy.Duration, error) {
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration (e.g. 30s, 5m, 720h)", name, s)
	}
	if v == 0 && !r.ZeroOff {
		return 0, d.Errf("%s must be a positive duration, got %q", name, s)
	}
	if err := r.Check(name, v); err != nil {
		return 0, d.Err(err.Error())
	}
	return caddy.Duration(v), nil
}

// Int reads one whole-number argument within [min, max].
func Int(d *caddyfile.Dispenser, dst *int, min, max int) error {
	sub := d.Val()
	var s string
	if err := OneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", sub, s)
	}
	if err := CheckInt(sub, n, min, max); err != nil {
		return d.Err(err.Error())
	}
	*dst = n
	return nil
}

// CheckInt reports n outside [min, max], naming the setting.
func CheckInt(name string, n, min, max int) error {
	if n < min || n > max {
		return fmt.Errorf("%s must be between %d and %d, got %d", name, min, max, n)
	}
	return nil
}

// Resolve replaces the placeholders of a config value (such as
// {env.WECHAT_APP_SECRET}) and names the setting in its error. An unknown
// placeholder is an error; one that is known but empty (an unset
// environment variable) gives "", which the caller judges. The error
// names the placeholder, never a value.
func Resolve(repl *caddy.Replacer, name, value string) (string, error) {
	out, err := repl.ReplaceOrErr(value, false, true)
	if err != nil {
		return "", fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}

// ResolveSecret is Resolve for a secret. Its error shows nothing of the
// value: in a literal secret that happens to hold braces, the "unknown
// placeholder" would be a piece of the secret itself.
func ResolveSecret(repl *caddy.Replacer, name, value string) (Secret, error) {
	out, err := repl.ReplaceOrErr(value, false, true)
	if err != nil {
		return Secret{}, fmt.Errorf(`%s holds a placeholder that is not known (not shown: it may be part of the secret; write a literal "{" as "\{")`, name)
	}
	return Secret{value: out}, nil
}

// Secret holds a resolved secret (an app secret, a Redis password). It
// prints as [REDACTED] whatever formats it, so a struct that holds one
// can be logged or dumped without leaking it; Reveal gives the value to
// the one place that needs it.
type Secret struct{ value string }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return s.value }

// IsZero reports an empty secret.
func (s Secret) IsZero() bool { return s.value == "" }

func (Secret) String() string   { return "[REDACTED]" }
func (Secret) GoString() string { return "[REDACTED]" }

// Format redacts for every verb, %x and %q included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// MarshalJSON redacts in JSON too.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }

// ReleaseAll drops a module's use of every usage-pool entry it opened; the
// last user of an entry destructs it (closing a Redis client, closing a
// persist file). It is the whole of a store module's Cleanup.
func ReleaseAll[K comparable](pool *caddy.UsagePool, keys []K) error {
	var errs []error
	for _, k := range keys {
		if _, err := pool.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
