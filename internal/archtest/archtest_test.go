// Package archtest holds the rules of the tree that no compiler checks, as tests over every
// non-test Go file of the module (testdata and dot directories excluded):
//   - only cmd/catdog draws progress: no other package imports a terminal library;
//   - a file another process reads is written through internal/atomicfile: os.WriteFile,
//     os.Create, os.CreateTemp and os.Rename appear only where allowedWrites says why;
//   - the model directory's file names are spelled only in model/modeldir;
//   - a file over maxLines lines says why in its doc comment ("… lines because …").
package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// maxLines is the length above which a file must explain itself.
const maxLines = 500

// terminalLibraries draw on a terminal; only cmd/catdog (progress.go) may import them.
var terminalLibraries = []string{"github.com/schollz/progressbar/v3", "golang.org/x/term", "github.com/mattn/go-isatty"}

// writeCalls are the os functions that write or replace files by hand.
var writeCalls = []string{"WriteFile", "Create", "CreateTemp", "Rename"}

// exemptWriteDirs write files no other process reads while they are written.
var exemptWriteDirs = map[string]string{
	"internal/atomicfile":  "the one implementation of the atomic write",
	"internal/testenv":     "test support: peers' config files, written before the peer starts",
	"internal/drifttest":   "test support: fixtures written before the code under test reads them",
	"ci/internal/fixture":  "test support: a model directory written before the build reads it",
	"bench":                "benchmark programs: results read after the program exits",
	"ci/imagerun/testdata": "a fake server binary built for the smoke-run tests",
}

// allowedWrites are the hand-written writes outside the exempt directories, by file and call.
var allowedWrites = map[[2]string]string{
	{"dvcfmt/cache/cache.go", "Rename"}:              "content-addressed: the name is the hash, known after the bytes are written",
	{"dvcfmt/remote/local.go", "Rename"}:             "content-addressed remote objects, created read-only with O_EXCL, size checked",
	{"dvcfmt/repo/checkout.go", "WriteFile"}:         "an empty temp file instead of a link (as dvc), renamed into place",
	{"dvcfmt/repo/checkout.go", "Rename"}:            "a link to a verified cache object renamed into place",
	{"ci/imagebuild/layer.go", "CreateTemp"}:         "content-addressed layer blob: the name is its digest",
	{"ci/imagebuild/layer.go", "Rename"}:             "content-addressed layer blob: the name is its digest",
	{"imageprep/prepare.go", "CreateTemp"}:           "scratch pixel file, removed; the split files are written through atomicfile",
	{"mlflowclient/journal/replay.go", "CreateTemp"}: "scratch file for an upload, removed after it",
}

// modelDirOwners lists where another package owns a name that the model directory also uses.
var modelDirOwners = map[[2]string]string{
	{"manifest.csv", "imageprep"}:       "the prepared folder's manifest (imageprep.ManifestFile), copied into the model directory",
	{"MLmodel", "mlflowclient/journal"}: "MLflow's model descriptor, which the journal uploads for any logged model",
}

type goFile struct {
	rel   string // slash path from the module root
	dir   string // slash directory from the module root
	lines int
	ast   *ast.File
}

func moduleFiles(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	var files []goFile
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		files = append(files, goFile{rel: rel, dir: pathDir(rel), lines: strings.Count(string(src), "\n"), ast: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("found only %d Go files: wrong root?", len(files))
	}
	return files
}

func pathDir(rel string) string {
	if i := strings.LastIndex(rel, "/"); i >= 0 {
		return rel[:i]
	}
	return "."
}

func under(dir, prefix string) bool { return dir == prefix || strings.HasPrefix(dir, prefix+"/") }

// imports maps a file's local import names to paths.
func imports(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		m[name] = p
	}
	return m
}

func TestNoTerminalLibraryOutsideCmdCatdog(t *testing.T) {
	for _, f := range moduleFiles(t) {
		if f.dir == "cmd/catdog" {
			continue
		}
		for _, p := range imports(f.ast) {
			for _, lib := range terminalLibraries {
				if p == lib {
					t.Errorf("%s imports %s: report progress as data (internal/progress) and let cmd/catdog draw it", f.rel, lib)
				}
			}
		}
	}
}

func TestFilesWrittenThroughAtomicfile(t *testing.T) {
	used := map[[2]string]bool{}
	for _, f := range moduleFiles(t) {
		exempt := false
		for d := range exemptWriteDirs {
			exempt = exempt || under(f.dir, d)
		}
		if exempt {
			continue
		}
		imp := imports(f.ast)
		ast.Inspect(f.ast, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok || imp[x.Name] != "os" {
				return true
			}
			for _, call := range writeCalls {
				if sel.Sel.Name != call {
					continue
				}
				key := [2]string{f.rel, call}
				if _, ok := allowedWrites[key]; ok {
					used[key] = true
					continue
				}
				t.Errorf("%s: os.%s: write files through internal/atomicfile (or add the file to allowedWrites with the reason)", f.rel, call)
			}
			return true
		})
	}
	for key := range allowedWrites {
		if !used[key] {
			t.Errorf("allowedWrites: %s no longer calls os.%s: remove the entry", key[0], key[1])
		}
	}
}

func TestModelDirNamesOnlyInModeldir(t *testing.T) {
	files := moduleFiles(t)
	names := map[string]bool{}
	for _, f := range files {
		if f.dir != "model/modeldir" {
			continue
		}
		for _, decl := range f.ast.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				for _, v := range spec.(*ast.ValueSpec).Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						names[s] = true
					}
				}
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("model/modeldir declares %d file names: the test no longer finds them", len(names))
	}
	used := map[[2]string]bool{}
	for _, f := range files {
		if f.dir == "model/modeldir" {
			continue
		}
		ast.Inspect(f.ast, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			if !names[s] {
				return true
			}
			key := [2]string{s, f.dir}
			if _, ok := modelDirOwners[key]; ok {
				used[key] = true
				return true
			}
			t.Errorf("%s spells the model directory's file %q: use its model/modeldir constant", f.rel, s)
			return true
		})
	}
	for key := range modelDirOwners {
		if !used[key] {
			t.Errorf("modelDirOwners: %s no longer spells %q: remove the entry", key[1], key[0])
		}
	}
}

func TestLongFilesSayWhy(t *testing.T) {
	var long []string
	for _, f := range moduleFiles(t) {
		if f.lines <= maxLines {
			continue
		}
		if f.ast.Doc != nil && strings.Contains(f.ast.Doc.Text(), "lines because") {
			continue
		}
		long = append(long, f.rel+" ("+strconv.Itoa(f.lines)+" lines)")
	}
	sort.Strings(long)
	for _, l := range long {
		t.Errorf("%s: over %d lines; split it, or say why in its doc comment (\"… lines because …\")", l, maxLines)
	}
}
