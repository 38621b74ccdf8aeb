package dvcfmt_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFormatCodeIsPure holds the line that package dvcfmt (the format code) does no I/O of
// its own: it may not import os, the network, exec or syscall. Cache, remotes and workflows
// live in the sub-packages.
func TestFormatCodeIsPure(t *testing.T) {
	forbidden := []string{"os", "os/exec", "net", "net/http", "syscall", "io/ioutil", "path/filepath", "golang.org/x/sys/unix"}
	files, _ := filepath.Glob("*.go")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range pf.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, "net/") {
					t.Errorf("%s imports %s; format code must stay pure", f, path)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
