package redisstore

import (
	"fmt"
	"go/ast"
	"go/token"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The check behind TestRedisStoreScriptsDeclareKeys, read from source:
// which Lua scripts the package makes (its Go files, scriptsOf), which
// keys each touches (luaKeyProblems) and how many keys its callers pass.
// It is strict on purpose: what it cannot read (a command it does not
// know, a key held in a variable, keys counted at run time) is reported,
// never passed.

// keyArgs says which arguments of each command the scripts may use are
// keys: the first, all of them, or none. A command missing here is
// reported, to be added with its key positions.
var keyArgs = map[string]string{
	"GET": "first", "SET": "first", "GETDEL": "first", "INCR": "first",
	"EXPIRE": "first", "PEXPIRE": "first", "EXPIREAT": "first", "PEXPIREAT": "first",
	"TTL": "first", "PTTL": "first", "PERSIST": "first", "TYPE": "first",
	"HGET": "first", "HMGET": "first", "HSET": "first", "HDEL": "first", "HGETALL": "first",
	"HEXISTS": "first", "HLEN": "first", "HINCRBY": "first",
	"ZADD": "first", "ZREM": "first", "ZCARD": "first", "ZSCORE": "first",
	"ZRANGEBYSCORE": "first", "ZREMRANGEBYSCORE": "first",
	"SADD": "first", "SREM": "first", "SCARD": "first", "SMEMBERS": "first",
	"DEL": "all", "UNLINK": "all", "EXISTS": "all", "MGET": "all",
	"TIME": "none", "PUBLISH": "none", // (a channel is no key)
}

var (
	luaFuncRe    = regexp.MustCompile(`(?m)^local function (\w+)\(([^)]*)\)`)
	luaFuncEndRe = regexp.MustCompile(`(?m)^end\b`)
	redisCallRe  = regexp.MustCompile(`redis\.p?call\b`)
	declaredRe   = regexp.MustCompile(`^KEYS\[([1-9][0-9]*)\]$`)
	keysUseRe    = regexp.MustCompile(`KEYS\s*\[`)
	keysIndexRe  = regexp.MustCompile(`KEYS\[([1-9][0-9]*)\]`)
	luaStringRe  = regexp.MustCompile(`^'[^'\\]*'$|^"[^"\\]*"$`)
)

// luaFunc is a helper of the scripts (a local function at top level).
type luaFunc struct {
	name       string
	params     []string
	start, end int // its text in the source
}

// luaArgs returns the top-level arguments of the call whose "(" is at
// src[open], trimmed, and whether the call is closed.
func luaArgs(src string, open int) ([]string, bool) {
	var args []string
	depth, from := 0, open+1
	for i := open; i < len(src); i++ {
		switch c := src[i]; c {
		case '\'', '"':
			for i++; i < len(src) && src[i] != c; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth--; depth == 0 {
				if a := strings.TrimSpace(src[from:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, true
			}
		case ',':
			if depth == 1 {
				args = append(args, strings.TrimSpace(src[from:i]))
				from = i + 1
			}
		}
	}
	return nil, false
}

// luaKeyProblems lists what in the script src touches a key that is not
// one of KEYS, and answers the highest KEYS index it reads. A key must be
// KEYS[n] itself, or a parameter of a helper that every caller fills with
// KEYS[n] (or with a parameter of its own that is so filled).
func luaKeyProblems(src string) (problems []string, maxKey int) {
	var funcs []luaFunc
	for _, m := range luaFuncRe.FindAllStringSubmatchIndex(src, -1) {
		f := luaFunc{name: src[m[2]:m[3]], start: m[0], end: len(src)}
		for _, p := range strings.Split(src[m[4]:m[5]], ",") {
			f.params = append(f.params, strings.TrimSpace(p))
		}
		if e := luaFuncEndRe.FindStringIndex(src[m[1]:]); e != nil {
			f.end = m[1] + e[1]
		}
		funcs = append(funcs, f)
	}
	enclosing := func(pos int) *luaFunc {
		for i := range funcs {
			if funcs[i].start <= pos && pos < funcs[i].end {
				return &funcs[i]
			}
		}
		return nil
	}
	seen := map[string]bool{}
	report := func(format string, a ...any) {
		if p := fmt.Sprintf(format, a...); !seen[p] {
			seen[p] = true
			problems = append(problems, p)
		}
	}
	keyParams := map[string]map[int]bool{} // helper -> indexes of its parameters used as keys
	changed := false
	// key checks one key argument of the call at pos.
	key := func(call, arg string, pos int) {
		if declaredRe.MatchString(arg) {
			return
		}
		if f := enclosing(pos); f != nil {
			if i := slices.Index(f.params, arg); i >= 0 {
				if keyParams[f.name] == nil {
					keyParams[f.name] = map[int]bool{}
				}
				if !keyParams[f.name][i] {
					keyParams[f.name][i], changed = true, true
				}
				return
			}
		}
		report("%s: key %s is not one of KEYS (built or chosen inside the script)", call, arg)
	}

	for _, m := range redisCallRe.FindAllStringIndex(src, -1) {
		rest := strings.TrimLeft(src[m[1]:], " \t")
		open := len(src) - len(rest)
		if !strings.HasPrefix(rest, "(") {
			report("%s used other than called directly: its keys cannot be checked", src[m[0]:m[1]])
			continue
		}
		args, ok := luaArgs(src, open)
		if !ok || len(args) == 0 {
			report("%s: a call that does not parse", src[m[0]:min(len(src), m[1]+40)])
			continue
		}
		if !luaStringRe.MatchString(args[0]) {
			report("%s(%s, ...): a command chosen inside the script", src[m[0]:m[1]], args[0])
			continue
		}
		cmd := strings.ToUpper(args[0][1 : len(args[0])-1])
		call := fmt.Sprintf("%s('%s', ...)", src[m[0]:m[1]], cmd)
		switch keyArgs[cmd] {
		case "none":
		case "first":
			if len(args) < 2 {
				report("%s: no key", call)
				break
			}
			key(call, args[1], m[0])
		case "all":
			for _, a := range args[1:] {
				key(call, a, m[0])
			}
		default:
			report("%s: a command the check does not know the keys of (add it to keyArgs)", call)
		}
	}
	// The helpers' callers, until no more of their parameters turn out
	// to be keys (a helper may fill another's with its own).
	for changed = true; changed; {
		changed = false
		for _, f := range funcs {
			if len(keyParams[f.name]) == 0 {
				continue
			}
			callRe := regexp.MustCompile(`\b` + regexp.QuoteMeta(f.name) + `\s*\(`)
			for _, m := range callRe.FindAllStringIndex(src, -1) {
				if m[0] == f.start+len("local function ") {
					continue // its own definition
				}
				args, ok := luaArgs(src, m[1]-1)
				if !ok {
					report("%s(: a call that does not parse", f.name)
					continue
				}
				for i := range keyParams[f.name] {
					call := fmt.Sprintf("%s(...) argument %d", f.name, i+1)
					if i >= len(args) {
						report("%s: missing (it is a key)", call)
						continue
					}
					key(call, args[i], m[0])
				}
			}
		}
	}
	// KEYS read by an index the check cannot see (KEYS[i]) could be any.
	if n := len(keysUseRe.FindAllStringIndex(src, -1)); n != len(keysIndexRe.FindAllStringIndex(src, -1)) {
		report("KEYS indexed by an expression: which keys the script reads cannot be checked")
	}
	for _, m := range keysIndexRe.FindAllStringSubmatch(src, -1) {
		n, _ := strconv.Atoi(m[1])
		maxKey = max(maxKey, n)
	}
	return problems, maxKey
}

// goScript is a Lua script of the package, as its Go source makes it.
type goScript struct {
	name  string // the package variable holding it
	src   string
	calls []goScriptCall
}

// goScriptCall is a place that runs a script, and how many KEYS it
// passes (-1: not countable from the source).
type goScriptCall struct {
	pos  token.Position
	keys int
}

// scriptRuns are the methods of a *redis.Script that run it, with KEYS
// as their third argument.
var scriptRuns = map[string]bool{"Run": true, "RunRO": true, "Eval": true, "EvalRO": true, "EvalSha": true, "EvalShaRO": true}

// scriptsOf finds every redis.NewScript in files (one package), with its
// Lua source, resolved from the string constants it is made of, and its
// callers. What it cannot resolve is a problem.
func scriptsOf(fset *token.FileSet, files []*ast.File) (scripts map[string]*goScript, problems []string) {
	consts := map[string]ast.Expr{}
	funcs := map[string]*ast.FuncDecl{}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					if vs, ok := sp.(*ast.ValueSpec); ok && d.Tok == token.CONST && len(vs.Names) == len(vs.Values) {
						for i, n := range vs.Names {
							consts[n.Name] = vs.Values[i]
						}
					}
				}
			case *ast.FuncDecl:
				funcs[d.Name.Name] = d
			}
		}
	}
	var eval func(e ast.Expr, depth int) (string, bool)
	eval = func(e ast.Expr, depth int) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			return s, e.Kind == token.STRING && err == nil
		case *ast.Ident:
			if c, ok := consts[e.Name]; ok && depth < 10 {
				return eval(c, depth+1)
			}
		case *ast.ParenExpr:
			return eval(e.X, depth)
		case *ast.BinaryExpr:
			a, okA := eval(e.X, depth)
			b, okB := eval(e.Y, depth)
			return a + b, e.Op == token.ADD && okA && okB
		}
		return "", false
	}
	isNewScript := func(e ast.Expr) (*ast.CallExpr, bool) {
		c, ok := e.(*ast.CallExpr)
		if !ok {
			return nil, false
		}
		sel, ok := c.Fun.(*ast.SelectorExpr)
		if !ok {
			return nil, false
		}
		x, ok := sel.X.(*ast.Ident)
		return c, ok && x.Name == "redis" && sel.Sel.Name == "NewScript"
	}

	scripts = map[string]*goScript{}
	declared := map[*ast.CallExpr]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, v := range vs.Values {
					c, ok := isNewScript(v)
					if !ok || i >= len(vs.Names) || len(c.Args) != 1 {
						continue
					}
					declared[c] = true
					name := vs.Names[i].Name
					src, ok := eval(c.Args[0], 0)
					if !ok {
						problems = append(problems, fmt.Sprintf("%s: its source is not made of string constants: it cannot be checked", name))
						continue
					}
					scripts[name] = &goScript{name: name, src: src}
				}
			}
		}
	}

	// countKeys counts the KEYS a call passes, from the source.
	var countKeys func(e ast.Expr, depth int) int
	countKeys = func(e ast.Expr, depth int) int {
		switch e := e.(type) {
		case *ast.CompositeLit:
			return len(e.Elts)
		case *ast.SliceExpr:
			lo, hi := 0, -1
			if e.Low != nil {
				lo = intLit(e.Low)
			}
			if e.High != nil {
				hi = intLit(e.High)
			} else {
				hi = countKeys(e.X, depth)
			}
			if lo < 0 || hi < lo || e.Slice3 {
				return -1
			}
			if n := countKeys(e.X, depth); n >= 0 && hi > n {
				return -1 // (it would panic)
			}
			return hi - lo
		case *ast.CallExpr:
			var name string
			switch fn := e.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				name = fn.Sel.Name
			}
			// A function of the package whose body is one return.
			if fd := funcs[name]; fd != nil && fd.Body != nil && len(fd.Body.List) == 1 && depth < 10 {
				if r, ok := fd.Body.List[0].(*ast.ReturnStmt); ok && len(r.Results) == 1 {
					return countKeys(r.Results[0], depth+1)
				}
			}
		}
		return -1
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if _, ok := isNewScript(c); ok && !declared[c] {
				problems = append(problems, fmt.Sprintf("%s: a script made other than as a package variable: it cannot be checked", fset.Position(c.Pos())))
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok || !scriptRuns[sel.Sel.Name] {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok || scripts[x.Name] == nil {
				return true
			}
			keys := -1
			if len(c.Args) >= 3 {
				keys = countKeys(c.Args[2], 0)
			}
			scripts[x.Name].calls = append(scripts[x.Name].calls, goScriptCall{fset.Position(c.Pos()), keys})
			return true
		})
	}
	return scripts, problems
}

// intLit is the value of an integer literal, or -1.
func intLit(e ast.Expr) int {
	if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.INT {
		if n, err := strconv.Atoi(b.Value); err == nil {
			return n
		}
	}
	return -1
}

// scriptProblems checks every script of files: its keys come from KEYS,
// and every caller passes at least as many as it reads.
func scriptProblems(fset *token.FileSet, files []*ast.File) (problems []string, checked []string) {
	scripts, problems := scriptsOf(fset, files)
	for _, name := range slices.Sorted(maps.Keys(scripts)) {
		sc := scripts[name]
		checked = append(checked, name)
		lua, maxKey := luaKeyProblems(sc.src)
		for _, p := range lua {
			problems = append(problems, name+": "+p)
		}
		if len(sc.calls) == 0 {
			problems = append(problems, name+": never run: no caller whose KEYS can be checked")
		}
		for _, c := range sc.calls {
			switch {
			case c.keys < 0:
				problems = append(problems, fmt.Sprintf("%s: %s passes KEYS the check cannot count", name, c.pos))
			case c.keys < maxKey:
				problems = append(problems, fmt.Sprintf("%s: %s passes %d KEYS, the script reads KEYS[%d]", name, c.pos, c.keys, maxKey))
			}
		}
	}
	return problems, checked
}
