package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name    string
		old     []byte // nil: no file before
		data    []byte
		perm    os.FileMode
		wantErr bool
	}{
		{name: "new file", data: []byte("hello\n"), perm: 0o644},
		{name: "replace", old: []byte("old"), data: []byte("new content"), perm: 0o600},
		{name: "empty", old: []byte("old"), data: nil, perm: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tt.old != nil {
				if err := os.WriteFile(p, tt.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(p, tt.data, tt.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("content %q, want %q", got, tt.data)
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			assertOnly(t, dir, "f")
		})
	}
}

func TestWriteErrorKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 3<<20)) // past the buffer: really on disk
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Errorf("target changed to %d bytes after a failed write", len(got))
	}
	assertOnly(t, dir, "f")
}

func TestMissingDirectory(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o644)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
}

// TestKilledWriter kills a writer process in the middle of large writes, many times, and
// requires the target to hold exactly the old or exactly the new content every time.
func TestKilledWriter(t *testing.T) {
	if os.Getenv("ATOMICFILE_CHILD") != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	old := bytes.Repeat([]byte("o"), 1<<20)
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	sawNew := false
	for i := 0; i < 12; i++ {
		cmd := exec.Command(exe, "-test.run=^TestChildWriter$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_CHILD="+p)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+i*7) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case bytes.Equal(got, old):
		case isNew(got):
			sawNew = true
			old = got
		default:
			t.Fatalf("kill %d: target holds %d bytes that are neither the old nor a new content", i, len(got))
		}
	}
	t.Logf("writer finished before the kill at least once: %v", sawNew)
}

// TestChildWriter is the writer process of TestKilledWriter; it does nothing in a normal run.
func TestChildWriter(t *testing.T) {
	p := os.Getenv("ATOMICFILE_CHILD")
	if p == "" {
		t.Skip("child process of TestKilledWriter")
	}
	for gen := 0; ; gen++ {
		_ = Write(p, 0o644, func(w io.Writer) error {
			tag := []byte("gen" + strconv.Itoa(gen) + ";")
			for i := 0; i < 4096; i++ {
				if _, err := w.Write(bytes.Repeat(tag, 64)); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// isNew reports whether b is one complete generation written by TestChildWriter.
func isNew(b []byte) bool {
	i := bytes.IndexByte(b, ';')
	if i < 0 {
		return false
	}
	tag := b[:i+1]
	return len(b) == len(tag)*64*4096 && bytes.Equal(b, bytes.Repeat(tag, 64*4096))
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("directory holds %v, want only %v (temp files left behind?)", got, names)
	}
}

// TestPending writes through a reserved path the way a path-only writer (gotch) does: the file
// is replaced by name, then committed or aborted.
func TestPending(t *testing.T) {
	tests := []struct {
		name   string
		commit bool
		want   string
	}{
		{name: "commit replaces the target", commit: true, want: "new"},
		{name: "abort keeps the target", commit: false, want: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "best_model.ot")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			w, err := Reserve(p)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if filepath.Dir(w.Path()) != dir || w.Path() == p {
				t.Fatalf("temp path %s: want a different file in %s", w.Path(), dir)
			}
			// A path-only writer truncates or recreates the file by name.
			if err := os.WriteFile(w.Path(), []byte("new"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.commit {
				if err := w.Commit(0o644); err != nil {
					t.Fatal(err)
				}
				if err := w.Commit(0o644); err == nil {
					t.Error("a second Commit succeeded")
				}
			}
			w.Abort()
			got, _ := os.ReadFile(p)
			if string(got) != tt.want {
				t.Errorf("target %q, want %q", got, tt.want)
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode().Perm())
			}
			assertOnly(t, dir, "best_model.ot")
		})
	}
}

// TestPendingCommitFailureCleansUp: a temp file the writer removed cannot be committed, and the
// target and directory stay as they were.
func TestPendingCommitFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	w, err := Reserve(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(w.Path()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(0o644); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
	assertOnly(t, dir)
}
