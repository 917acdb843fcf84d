package redisstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// parsePackage parses the package's own Go files, tests left out.
func parsePackage(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}

// TestRedisStoreScriptsDeclareKeys: every key a script touches comes from
// KEYS (Redis Cluster's rule: a key built inside a script may lie in a
// slot of another node), and every caller passes the KEYS the script
// reads. The scripts are found in the package's source, every
// redis.NewScript, so a new one is checked without being listed here.
func TestRedisStoreScriptsDeclareKeys(t *testing.T) {
	problems, checked := scriptProblems(parsePackage(t))
	for _, p := range problems {
		t.Error(p)
	}
	// The scripts there are today, so that a check that finds none (its
	// reading of the source broken) fails.
	for _, name := range []string{
		"createUserScript", "setCopyScript", "deleteScript", "logoutEndScript", "revokeEndScript",
		"bindPhoneScript", "countScript", "userScript", "replaceKeyScript",
	} {
		if !slices.Contains(checked, name) {
			t.Errorf("%s was not checked (checked: %v)", name, checked)
		}
	}
}

// The check itself: it reports a script that builds a key, reads one from
// ARGV or a variable, touches more keys than it is given, or that it
// cannot read; and passes the shapes the package's scripts have.
func TestRedisStoreScriptsDeclareKeysCheck(t *testing.T) {
	good := []string{
		`redis.call('GET', KEYS[1])`,
		`redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])`,
		`redis.call('PUBLISH', ARGV[1], ARGV[2]) redis.call('TIME')`,
		"local function f(a, k)\n  return redis.call('HGETALL', k)\nend\n" +
			"local function g(k)\n  return f(1, k)\nend\n" +
			`g(KEYS[2])`,
	}
	for _, src := range good {
		if p, _ := luaKeyProblems(src); len(p) > 0 {
			t.Errorf("%s: reported %v", src, p)
		}
	}
	bad := []string{
		`redis.call('GET', 'app:u:' .. ARGV[1])`,                                     // built
		`redis.call('GET', KEYS[1] .. ':copy')`,                                      // built from a declared one
		`redis.call('DEL', KEYS[1], 'app:idx')`,                                      // a second key, literal
		`redis.call('GET', ARGV[1])`,                                                 // a key passed as an argument
		`local k = KEYS[1] redis.call('GET', k)`,                                     // through a variable
		`redis.pcall('SET', ARGV[2], 1)`,                                             // pcall too
		`redis.call('RENAME', KEYS[1], KEYS[2])`,                                     // a command it does not know
		`local c = 'GET' redis.call(c, KEYS[1])`,                                     // a command it cannot read
		`local call = redis.call call('GET', 'x')`,                                   // called through a variable
		`for i = 1, 2 do redis.call('GET', KEYS[i]) end`,                             // an index it cannot read
		"local function f(k)\n  return redis.call('GET', k)\nend\nf(ARGV[1])",        // a helper fed a built key
		"local function f(k)\n  return redis.call('GET', k)\nend\nf(KEYS[1]) f('x')", // one caller of two
		"local function f(a, k)\n  return redis.call('GET', k)\nend\nf(KEYS[1])",     // an argument missing
	}
	for _, src := range bad {
		if p, _ := luaKeyProblems(src); len(p) == 0 {
			t.Errorf("%s: not reported", src)
		}
	}
	if _, n := luaKeyProblems(`redis.call('DEL', KEYS[1], KEYS[3])`); n != 3 {
		t.Errorf("highest KEYS index %d, want 3", n)
	}

	// The Go side: the KEYS a caller passes, counted from the source.
	const goSrc = `package redisstore
import "github.com/redis/go-redis/v9"
const threeSrc = "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])"
const oneSrc = "redis.call('GET', KEYS[1])"
var threeScript = redis.NewScript(threeSrc)
var oneScript = redis.NewScript("" + oneSrc)
var builtScript = redis.NewScript(fmt.Sprint(oneSrc))
var unusedScript = redis.NewScript(oneSrc)
func (s *sharedStore) userKeys(openid string) []string { return []string{"a", "b", "c"} }
func f(s *sharedStore, keys []string) {
	threeScript.Run(ctx, c, s.userKeys("o"))
	threeScript.Run(ctx, c, s.userKeys("o")[:2])
	threeScript.Eval(ctx, c, []string{"a", "b"})
	oneScript.Run(ctx, c, keys)
	oneScript.EvalSha(ctx, c, []string{"a"})
	_ = redis.NewScript(oneSrc)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", goSrc, 0)
	if err != nil {
		t.Fatal(err)
	}
	problems, checked := scriptProblems(fset, []*ast.File{f})
	want := []string{
		"builtScript: its source is not made of string constants",
		"x.go:16:6: a script made other than as a package variable",
		"threeScript: x.go:12:2 passes 2 KEYS, the script reads KEYS[3]",
		"threeScript: x.go:13:2 passes 2 KEYS, the script reads KEYS[3]",
		"oneScript: x.go:14:2 passes KEYS the check cannot count",
		"unusedScript: never run",
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("not reported: %q (reported: %q)", w, problems)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("reported %q, want %d problems", problems, len(want))
	}
	if !slices.Equal(checked, []string{"oneScript", "threeScript", "unusedScript"}) {
		t.Errorf("checked %v", checked)
	}
}
