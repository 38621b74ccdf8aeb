package dvcfmt

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile is the name of dvc's ignore file, one per directory.
const IgnoreFile = ".dvcignore"

// Ignore holds `.dvcignore` rules (gitwildmatch patterns) gathered down a tree. Later rules
// win, deeper files come after shallower ones, as in git. The zero value ignores nothing.
type Ignore struct {
	patterns []gitignore.Pattern
}

// Add appends the rules of one .dvcignore file found in dir (slash-separated, relative to the
// repository root; "" for the root). Blank lines and # comments are skipped.
func (ig *Ignore) Add(data []byte, dir string) {
	var domain []string
	if dir != "" && dir != "." {
		domain = strings.Split(dir, "/")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), MaxConfigBytes)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ig.patterns = append(ig.patterns, gitignore.ParsePattern(line, domain))
	}
}

// Empty reports whether no rule was added.
func (ig *Ignore) Empty() bool { return len(ig.patterns) == 0 }

// Ignored reports whether relpath (slash-separated, relative to the repository root) is
// ignored. isDir tells whether it names a directory (for rules ending in "/").
func (ig *Ignore) Ignored(relpath string, isDir bool) bool {
	if len(ig.patterns) == 0 {
		return false
	}
	parts := strings.Split(relpath, "/")
	for i := len(ig.patterns) - 1; i >= 0; i-- {
		switch ig.patterns[i].Match(parts, isDir) {
		case gitignore.Exclude:
			return true
		case gitignore.Include:
			return false
		}
	}
	return false
}

// GitignoreEntry returns the line `dvc add` appends to the .gitignore next to a tracked path
// name: "/" + name with gitwildmatch meta characters ([]!*#?) backslash-escaped.
func GitignoreEntry(name string) string {
	var b strings.Builder
	b.WriteByte('/')
	for _, r := range name {
		if strings.ContainsRune(`[]!*#?`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// AddGitignoreEntry returns the .gitignore content with entry appended (newline-terminated)
// unless a line already equals it; changed reports whether anything was added.
func AddGitignoreEntry(content []byte, entry string) (out []byte, changed bool) {
	for _, line := range strings.Split(string(content), "\n") {
		if strings.TrimRight(line, "\r") == entry {
			return content, false
		}
	}
	out = append([]byte(nil), content...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	out = append(out, entry...)
	out = append(out, '\n')
	return out, true
}
