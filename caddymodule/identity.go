package caddymodule

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat-auth/caddy-wechat-auth/caddymodule/store"
)

// Default names of the identity headers WeChat's handlers set on
// pass-through; each platform has its own (platform.DefaultHeaders).
const (
	DefaultHeaderOpenID      = "X-WeChat-OpenID"
	DefaultHeaderUnionID     = "X-WeChat-UnionID"
	DefaultHeaderPhone       = "X-WeChat-Phone"
	DefaultHeaderCountryCode = "X-WeChat-Country-Code"
	DefaultHeaderAppID       = "X-WeChat-AppID"
)

// identityHeaders are the names of the headers the handler sets, in the
// two forms it needs them in, computed once at provision.
type identityHeaders struct {
	// Canonical forms: r.Header.Set would canonicalise (and allocate a
	// new string) on every request.
	openID, unionID, phone, countryCode, appID string

	// folded are the identity header names stripped from every request,
	// in the form of foldHeaderName.
	folded []string

	// stripped is folded as a set, built at provision, so that a
	// request's headers are checked in time proportional to their
	// number, however many names there are to strip.
	stripped foldedSet

	// appIDText is the app id, the value of the app id header.
	appIDText string
}

func newIdentityHeaders(h *Handler) identityHeaders {
	ih := identityHeaders{
		openID:      textproto.CanonicalMIMEHeaderKey(h.HeaderOpenID),
		unionID:     textproto.CanonicalMIMEHeaderKey(h.HeaderUnionID),
		phone:       textproto.CanonicalMIMEHeaderKey(h.HeaderPhone),
		countryCode: textproto.CanonicalMIMEHeaderKey(h.HeaderCountryCode),
		appID:       textproto.CanonicalMIMEHeaderKey(h.HeaderAppID),
		appIDText:   h.appID,
	}
	for _, name := range identityHeaderNames(h) {
		ih.folded = append(ih.folded, foldHeaderName(name))
	}
	ih.stripped = newFoldedSet(ih.folded)
	return ih
}

// isIdentity reports whether name could be read upstream as one of our
// identity headers.
func (ih *identityHeaders) isIdentity(name string) bool { return ih.stripped.has(name) }

// isIdentityOrAuth reports whether name is one of our identity headers
// or Authorization: the names no trailer or Connection token may carry.
func (ih *identityHeaders) isIdentityOrAuth(name string) bool {
	return ih.isIdentity(name) || foldedEqual(name, "authorization")
}

// stripTrailers removes the trailers isIdentityOrAuth names.
func (ih *identityHeaders) stripTrailers(r *http.Request) {
	for name := range r.Trailer {
		if ih.isIdentityOrAuth(name) {
			delete(r.Trailer, name)
		}
	}
}

// strip removes everything a client sent that an upstream could read as
// one of our identity headers, in every mode and for anonymous requests
// too:
//
//   - Headers. Servers disagree on header names: CGI, PHP and many
//     frameworks turn both "-" and "_" into "_" and ignore case, so
//     "x_wechat_openid" would reach a PHP app as HTTP_X_WECHAT_OPENID,
//     the very variable our X-WeChat-OpenID becomes. Names are compared
//     folded the same way.
//   - Trailers, declared or not: net/http merges every trailer it reads
//     into r.Trailer when the body ends, and a proxy forwards them. The
//     declared ones go now, the rest when the body hits its end.
//   - Connection tokens. A proxy deletes the headers a client names as
//     hop-by-hop (RFC 9110 §7.6.1) after we set ours, so
//     "Connection: X-WeChat-OpenID" would forward an authenticated
//     request with no identity. Tokens naming an identity header or
//     Authorization are dropped from the Connection header.
func (ih *identityHeaders) strip(r *http.Request) {
	// The loop notes the Connection header as it passes it, which spares
	// a map look-up on the many requests without one. The key is exact,
	// as before: a proxy reads the canonical "Connection" only.
	sawConnection := false
	for name := range r.Header {
		if ih.isIdentity(name) {
			delete(r.Header, name)
		} else if name == "Connection" {
			sawConnection = true
		}
	}
	if sawConnection {
		r.Header["Connection"] = ih.dropConnectionTokens(r.Header["Connection"])
		if len(r.Header["Connection"]) == 0 {
			delete(r.Header, "Connection")
		}
	}
	if len(r.Trailer) > 0 {
		ih.stripTrailers(r)
	}
	// A body of unknown length (chunked, or HTTP/2 and 3) can end with
	// trailers nobody declared.
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerStripper{ReadCloser: r.Body, r: r, ih: ih}
	}
}

// dropConnectionTokens returns the Connection values without the tokens
// that name an identity header or Authorization. It allocates only when
// there is something to drop.
func (ih *identityHeaders) dropConnectionTokens(values []string) []string {
	bad := func(token string) bool {
		return ih.isIdentityOrAuth(textproto.TrimString(token))
	}
	found := false
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			if bad(token) {
				found = true
			}
		}
	}
	if !found {
		return values
	}
	var kept []string
	for _, v := range values {
		var tokens []string
		for token := range strings.SplitSeq(v, ",") {
			if t := textproto.TrimString(token); t != "" && !bad(t) {
				tokens = append(tokens, t)
			}
		}
		if len(tokens) > 0 {
			kept = append(kept, strings.Join(tokens, ", "))
		}
	}
	return kept
}

// trailerStripper removes identity-named trailers once the body has been
// read to its end, which is when net/http has filled r.Trailer and before
// a proxy sends them on.
type trailerStripper struct {
	io.ReadCloser
	r  *http.Request
	ih *identityHeaders
}

func (t *trailerStripper) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		t.ih.stripTrailers(t.r)
	}
	return n, err
}

// set sets the identity headers and placeholders of a user. It is on the
// hot path, so it makes two small allocations: the header values share
// one backing array, and the placeholders are one provider over the
// user's values, asked only when something reads them.
func (ih *identityHeaders) set(r *http.Request, u store.User) {
	n := 2
	if u.UnionID != "" {
		n++
	}
	if u.Phone != "" {
		n += 2
	}
	vals := make([]string, 0, n)
	vals = setHeader(r.Header, vals, ih.openID, u.OpenID)
	if u.UnionID != "" {
		vals = setHeader(r.Header, vals, ih.unionID, u.UnionID)
	}
	if u.Phone != "" {
		vals = setHeader(r.Header, vals, ih.phone, u.Phone)
		if u.CountryCode != "" {
			vals = setHeader(r.Header, vals, ih.countryCode, u.CountryCode)
		}
	}
	setHeader(r.Header, vals, ih.appID, ih.appIDText)

	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Four Replacer.Sets cost a lock and a map insert each, about a
		// thousand instructions a request, most of it for placeholders
		// nobody reads. A provider costs one append. But providers are
		// asked after the replacer's static values, so a
		// {http.auth.user.*} an earlier handler set (basic_auth, say)
		// would win over ours: those are deleted first, under one lock,
		// so that, as with Set, the handler that authenticated last
		// names the user. A handler after us that Sets one still wins.
		repl.DeleteByPrefix(placeholderPrefix)
		repl.Map(userPlaceholders{openID: u.OpenID, unionID: u.UnionID, phone: u.Phone, appID: ih.appIDText}.replace)
	}
}

// placeholderPrefix is what the user's placeholders' names start with.
const placeholderPrefix = "http.auth.user."

// userPlaceholders are the values of one request's user placeholders.
type userPlaceholders struct{ openID, unionID, phone, appID string }

// replace answers {http.auth.user.id}, .unionid, .phone and .appid; the
// unionid and phone are known and empty when the user has none.
func (p userPlaceholders) replace(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, placeholderPrefix)
	if !ok {
		return nil, false
	}
	switch name {
	case "id":
		return p.openID, true
	case "unionid":
		return p.unionID, true
	case "phone":
		return p.phone, true
	case "appid":
		return p.appID, true
	}
	return nil, false
}

// setHeader sets header[name] (name already canonical) to value, taking
// the value slice from vals. Each slice is capped at its own length, so a
// later append by another handler to one header reallocates instead of
// overwriting the next header's value.
func setHeader(header http.Header, vals []string, name, value string) []string {
	i := len(vals)
	vals = append(vals, value)
	header[name] = vals[i : i+1 : i+1]
	return vals
}

// maxFoldedLen is the longest name a foldedSet folds on the stack;
// longer names (header names are rarely past 40 bytes) are compared one
// by one.
const maxFoldedLen = 64

// foldedSet is a set of folded header names (foldHeaderName) that tells,
// without allocating, whether a name folds to one of them.
type foldedSet struct {
	names map[string]struct{} // the names of 1 to maxFoldedLen bytes
	long  []string            // the others
	// maybe has the bit filterKey(f) set for each name f of names. A
	// name whose bit is clear cannot fold to one of them: its length or
	// its folded first or last byte differs from every name's. That is
	// one bit read for most request headers (Accept-Encoding is as long
	// as X-WeChat-OpenID, but starts differently).
	maybe [filterBits / 64]uint64
}

const filterBits = 4096

// filterKey hashes a name's length and its first and last bytes, folded,
// so that a name and every spelling of it that folds the same share a
// key. name must have 1 to maxFoldedLen bytes.
func filterKey(name string) uint32 {
	x := uint32(len(name))<<16 | uint32(foldByte(name[0]))<<8 | uint32(foldByte(name[len(name)-1]))
	return (x * 0x9E3779B1) >> (32 - 12) // 12 bits: filterBits
}

func newFoldedSet(folded []string) foldedSet {
	fs := foldedSet{names: make(map[string]struct{}, len(folded))}
	for _, f := range folded {
		if len(f) == 0 || len(f) > maxFoldedLen {
			fs.long = append(fs.long, f)
			continue
		}
		fs.names[f] = struct{}{}
		k := filterKey(f)
		fs.maybe[k/64] |= 1 << (k % 64)
	}
	return fs
}

// has reports whether name folds to a name of the set. Most request
// headers miss the filter and cost one bit read; the others are folded
// into a stack buffer and looked up (the compiler makes no string of it).
func (fs *foldedSet) has(name string) bool {
	if len(name) == 0 || len(name) > maxFoldedLen {
		for _, f := range fs.long {
			if foldedEqual(name, f) {
				return true
			}
		}
		return false
	}
	if k := filterKey(name); fs.maybe[k/64]&(1<<(k%64)) == 0 {
		return false
	}
	var buf [maxFoldedLen]byte
	for i := 0; i < len(name); i++ {
		buf[i] = foldByte(name[i])
	}
	_, ok := fs.names[string(buf[:len(name)])]
	return ok
}

// foldHeaderName lower-cases a header name and maps "_" to "-".
func foldHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

// foldedEqual compares name with an already folded name, without
// allocating.
func foldedEqual(name, folded string) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

// foldByte lower-cases c and maps "_" to "-". It is a table read: it
// runs on the first and last byte of every request header.
func foldByte(c byte) byte { return foldTable[c] }

var foldTable = func() (t [256]byte) {
	for c := range t {
		switch {
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c) + ('a' - 'A')
		case c == '_':
			t[c] = '-'
		default:
			t[c] = byte(c)
		}
	}
	return t
}()
