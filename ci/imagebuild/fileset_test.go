package imagebuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/usr/lib/x.so", "usr/lib/x.so", true},
		{"usr//lib/./x.so", "usr/lib/x.so", true},
		{"models/current/", "models/current", true},
		{"../etc/passwd", "", false},
		{"/a/../../b", "", false},
		{"/", "", false},
		{"", "", false},
		{"a\x00b", "", false},
	}
	for _, tt := range tests {
		got, err := cleanPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, ok=%t", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("cleanPath(%q) error %v is not ErrInvalidPath", tt.in, err)
		}
	}
}

func TestFileSetTarIsSortedAndNormalised(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bin")
	if err := os.WriteFile(src, []byte("#!/bin/true\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := NewFileSet()
	must(t, s.AddFile(src, "/usr/local/bin/catdog", 0o755))
	must(t, s.addData("etc/passwd", []byte("root:x:0:0::/root:/sbin/nologin\n"), 0o644))
	must(t, s.addDir("tmp", 0o777|modeSticky, 0, 0))
	must(t, s.addDir("home/nonroot", 0o700, 65532, 65532))
	must(t, s.addSymlink("lib", "usr/lib"))
	if err := s.addData("etc/passwd", []byte("x"), 0o644); err == nil {
		t.Error("adding etc/passwd twice succeeded, want an error")
	}
	if err := s.addData("etc/passwd/x", []byte("x"), 0o644); err == nil {
		t.Error("adding a file under a file succeeded, want an error")
	}
	mtime := time.Unix(1700000000, 123)
	var buf bytes.Buffer
	must(t, s.WriteTar(&buf, mtime))

	type hdr struct {
		name string
		mode int64
		uid  int
		typ  byte
	}
	want := []hdr{
		{"etc/", 0o755, 0, tar.TypeDir},
		{"etc/passwd", 0o644, 0, tar.TypeReg},
		{"home/", 0o755, 0, tar.TypeDir},
		{"home/nonroot/", 0o700, 65532, tar.TypeDir},
		{"lib", 0o777, 0, tar.TypeSymlink},
		{"tmp/", 0o1777, 0, tar.TypeDir},
		{"usr/", 0o755, 0, tar.TypeDir},
		{"usr/local/", 0o755, 0, tar.TypeDir},
		{"usr/local/bin/", 0o755, 0, tar.TypeDir},
		{"usr/local/bin/catdog", 0o755, 0, tar.TypeReg},
	}
	tr := tar.NewReader(&buf)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("tar has %d entries, want %d", i, len(want))
			}
			break
		}
		must(t, err)
		if i >= len(want) {
			t.Fatalf("extra tar entry %q", h.Name)
		}
		got := hdr{h.Name, h.Mode, h.Uid, h.Typeflag}
		if got != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got, want[i])
		}
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uname %q gname %q, want fixed mtime and no names", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		if h.Name == "usr/local/bin/catdog" {
			b, _ := io.ReadAll(tr)
			if string(b) != "#!/bin/true\n" {
				t.Errorf("catdog content = %q", b)
			}
		}
	}
}

func TestAddTreeNormalisesModes(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "run.sh"), []byte("x"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "model.json"), []byte("{}"), 0o600))
	must(t, os.Symlink("model.json", filepath.Join(dir, "link.json")))
	s := NewFileSet()
	must(t, s.addTree(dir, "models/current"))
	tests := []struct {
		path string
		mode int64
		typ  byte
	}{
		{"models/current", 0o755, tar.TypeDir},
		{"models/current/sub", 0o755, tar.TypeDir},
		{"models/current/sub/run.sh", 0o755, tar.TypeReg},
		{"models/current/model.json", 0o644, tar.TypeReg},
		{"models/current/link.json", 0o644, tar.TypeReg}, // followed
	}
	for _, tt := range tests {
		e, ok := s.Lookup(tt.path)
		if !ok || e.Mode != tt.mode || e.Type != tt.typ {
			t.Errorf("Lookup(%s) = %+v, %t; want mode %o type %c", tt.path, e, ok, tt.mode, tt.typ)
		}
	}
}

func TestWriteTarFailsWhenAFileShrinks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, []byte("0123456789"), 0o644))
	s := NewFileSet()
	must(t, s.AddFile(p, "f", 0o644))
	// Truncate between header and copy by giving WriteTar a writer that truncates on first write.
	w := writerFunc(func(b []byte) (int, error) {
		_ = os.Truncate(p, 2)
		return len(b), nil
	})
	if err := s.WriteTar(w, time.Time{}); err == nil {
		t.Fatal("WriteTar succeeded although the file shrank")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCacheRecipeFollowsFileChanges(t *testing.T) {
	ctx := t.Context()
	cache, err := NewCache(t.TempDir())
	must(t, err)
	src := filepath.Join(t.TempDir(), "weights")
	must(t, os.WriteFile(src, []byte("aaaaaaaa"), 0o644))
	set := NewFileSet()
	must(t, set.AddFile(src, "models/current/weights", 0o644))
	layer := func() *Layer {
		t.Helper()
		l, err := cache.Layer(ctx, set, LayerOptions{Name: "model"})
		must(t, err)
		return l
	}
	first := layer()
	if first.Cached {
		t.Fatal("first build came from an empty cache")
	}
	if again := layer(); !again.Cached || again.digest != first.digest {
		t.Fatalf("unchanged file: cached %t digest %s, want the cached %s", again.Cached, again.digest, first.digest)
	}
	// Same content, new mtime: the recipe misses, the content-addressed lookup hits.
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(src, later, later))
	if touched := layer(); !touched.Cached || touched.digest != first.digest {
		t.Fatalf("touched file: cached %t digest %s", touched.Cached, touched.digest)
	}
	// New content of the same size with the old mtime put back: ctime still changes.
	fi, err := os.Stat(src)
	must(t, err)
	must(t, os.WriteFile(src, []byte("bbbbbbbb"), 0o644))
	must(t, os.Chtimes(src, fi.ModTime(), fi.ModTime()))
	if changed := layer(); changed.Cached || changed.digest == first.digest {
		t.Fatalf("changed content: cached %t digest %s, want a new layer", changed.Cached, changed.digest)
	}
}
