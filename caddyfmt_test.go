package caddywechatauth

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestCaddyfilesAreFormatted keeps every Caddyfile the project shows in
// `caddy fmt` form, with Caddy's own formatter: the files named Caddyfile
// or Caddyfile.* and every ```caddyfile block of every Markdown file (the
// READMEs), so that what a reader copies is what `caddy fmt` would leave.
// Fix a file with: go run ./cmd/caddy fmt --overwrite <file>
func TestCaddyfilesAreFormatted(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		isCaddyfile := name == "Caddyfile" || strings.HasPrefix(name, "Caddyfile.")
		if !isCaddyfile && !strings.HasSuffix(name, ".md") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if isCaddyfile {
			checked++
			if got, want := string(raw), formatted(raw); got != want {
				t.Errorf("%s is not in `caddy fmt` form (go run ./cmd/caddy fmt --overwrite %s); it should be:\n%s", path, path, want)
			}
			return nil
		}
		for _, b := range caddyfileBlocks(string(raw)) {
			checked++
			if want := formatted([]byte(b.text)); b.text != want {
				t.Errorf("%s:%d: this ```caddyfile block is not in `caddy fmt` form (tabs, one space between tokens); it should be:\n%s", path, b.line, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Caddyfile.example, bench/Caddyfile and the README's blocks at least.
	if checked < 4 {
		t.Fatalf("found only %d Caddyfiles to check: the search is broken", checked)
	}
}

// formatted is what `caddy fmt` makes of a Caddyfile, ending in a newline.
func formatted(src []byte) string {
	return strings.TrimRight(string(caddyfile.Format(src)), "\n") + "\n"
}

type mdBlock struct {
	line int // of the opening fence, from 1
	text string
}

// fence opens a fenced code block: up to three spaces, then three or more
// backticks or tildes, then the info string.
var fence = regexp.MustCompile("^ {0,3}(```+|~~~+)\\s*([^`\\s]*)")

// caddyfileBlocks returns the fenced code blocks of a Markdown text whose
// language is caddyfile (or caddy), each ending in a newline.
func caddyfileBlocks(md string) []mdBlock {
	var blocks []mdBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		open, lang := m[1], strings.ToLower(m[2])
		var body []string
		j := i + 1
		for ; j < len(lines); j++ {
			if c := strings.TrimSpace(lines[j]); strings.HasPrefix(c, open[:3]) && strings.Trim(c, open[:1]) == "" && len(c) >= len(open) {
				break
			}
			body = append(body, lines[j])
		}
		if lang == "caddyfile" || lang == "caddy" {
			blocks = append(blocks, mdBlock{line: i + 1, text: strings.Join(body, "\n") + "\n"})
		}
		i = j
	}
	return blocks
}
