package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadDirStat(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"b.txt": 0o644, "a.sh": 0o755, "c": 0o400} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+" body"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDirStat(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name() || g.Type != w.Type() {
			t.Errorf("entry %d = %s %v, want %s %v", i, g.Name, g.Type, w.Name(), w.Type())
		}
		if !w.Type().IsRegular() {
			if g.Info != nil {
				t.Errorf("%s: Info set for a non-regular entry", g.Name)
			}
			continue
		}
		lst, err := os.Lstat(filepath.Join(dir, w.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if g.Info.Name() != lst.Name() || g.Info.Size() != lst.Size() || g.Info.Mode() != lst.Mode() || !g.Info.ModTime().Equal(lst.ModTime()) || g.Info.IsDir() {
			t.Errorf("%s: info %v %v %v %v, want %v %v %v %v", g.Name, g.Info.Name(), g.Info.Size(), g.Info.Mode(), g.Info.ModTime(), lst.Name(), lst.Size(), lst.Mode(), lst.ModTime())
		}
	}
	if _, err := ReadDirStat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{".", "x"} {
		p := filepath.Join(dir, name)
		if name == "x" {
			if err := os.WriteFile(p, nil, 0o751); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o751|os.ModeSetuid); err != nil {
				t.Fatal(err)
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Fatalf("%s: Sys() is %T", name, fi.Sys())
		}
		if got := FileMode(st.Mode); got != fi.Mode() {
			t.Errorf("%s: FileMode(%o) = %v, want %v", name, st.Mode, got, fi.Mode())
		}
	}
}
