package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLayoutMatchesGoList: the README's layout block names every package `go list ./...`
// reports (top-level directories at the start of a line, nested ones by their last path
// element followed by "/"), and every top-level directory it names exists. bench/ is described
// as a whole.
func TestReadmeLayoutMatchesGoList(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := layoutBlock(t, string(readme))

	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/catdog-mlops/catdog/"
	top := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if m := regexp.MustCompile(`^([a-z][a-z0-9]*)/`).FindStringSubmatch(line); m != nil {
			top[m[1]] = true
		}
	}
	for _, p := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(p, module)
		parts := strings.Split(rel, "/")
		if !top[parts[0]] {
			t.Errorf("package %s: the layout has no line for %s/", rel, parts[0])
			continue
		}
		if parts[0] == "bench" || len(parts) == 1 {
			continue
		}
		last := parts[len(parts)-1]
		if !regexp.MustCompile(`(^|[\s(,/])` + regexp.QuoteMeta(last) + `/`).MatchString(block) {
			t.Errorf("package %s: the layout does not name %s/", rel, last)
		}
	}
	for dir := range top {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Errorf("the layout names %s/, which is not a directory", dir)
		}
	}
}

func layoutBlock(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	if !ok {
		t.Fatal("the Layout section has no code block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the Layout code block is not closed")
	}
	return block
}
