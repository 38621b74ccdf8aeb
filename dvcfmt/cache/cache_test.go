package cache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/cache"
)

const fooOID = "acbd18db4cc2f85cedef654fccc4a4d8" // md5("foo")

func TestPutVerifiesAndProtects(t *testing.T) {
	ctx := context.Background()
	c := cache.Path(t.TempDir())
	if err := c.Put(ctx, fooOID, false, strings.NewReader("foo")); err != nil {
		t.Fatal(err)
	}
	p := c.ObjectPath(fooOID, false)
	if want := filepath.Join(string(c), "files", "md5", "ac", "bd18db4cc2f85cedef654fccc4a4d8"); p != want {
		t.Fatalf("ObjectPath = %s, want %s", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("object mode = %v, %v; want 0444", fi.Mode(), err)
	}
	// A corrupt stream never enters the cache.
	const barOID = "37b51d194a7513e45b56f6524f2d51f2" // md5("bar")
	err = c.Put(ctx, barOID, false, strings.NewReader("not bar"))
	var ce *cache.CorruptError
	if !errors.As(err, &ce) || ce.OID != barOID {
		t.Fatalf("Put(corrupt) = %v, want *CorruptError", err)
	}
	if c.Has(barOID, false) {
		t.Fatal("corrupt object is in the cache")
	}
	entries, _ := os.ReadDir(filepath.Dir(c.ObjectPath(barOID, false)))
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestCheckRehashesWritableObjects(t *testing.T) {
	c := cache.Path(t.TempDir())
	p := c.ObjectPath(fooOID, false)
	os.MkdirAll(filepath.Dir(p), 0o755)
	// Writable and correct: trusted after a re-hash and protected.
	os.WriteFile(p, []byte("foo"), 0o644)
	if err := c.Check(fooOID, false); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm()&0o222 != 0 {
		t.Fatal("valid writable object was not made read-only")
	}
	// Writable and wrong: removed.
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("tampered"), 0o644)
	var ce *cache.CorruptError
	if err := c.Check(fooOID, false); !errors.As(err, &ce) {
		t.Fatalf("Check(tampered) = %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("corrupt writable object was kept")
	}
	if err := c.Check(fooOID, false); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Check(missing) = %v, want ErrNotFound", err)
	}
}

func TestPutFileAndLegacyLayout(t *testing.T) {
	ctx := context.Background()
	c := cache.Path(t.TempDir())
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("foo"), 0o644)
	oid, n, err := c.PutFile(ctx, src)
	if err != nil || oid != fooOID || n != 3 || !c.Has(fooOID, false) {
		t.Fatalf("PutFile = %s, %d, %v", oid, n, err)
	}
	// Legacy objects hash with md5-dos2unix and live at <root>/xx/rest.
	if err := c.Put(ctx, "acbd18db4cc2f85cedef654fccc4a4d8", true, strings.NewReader("foo")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(string(c), "ac", "bd18db4cc2f85cedef654fccc4a4d8")); err != nil {
		t.Fatalf("legacy object not at <root>/ac/...: %v", err)
	}
	if cache.Key(fooOID, false) != "files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8" || cache.Key(fooOID, true) != "ac/bd18db4cc2f85cedef654fccc4a4d8" {
		t.Fatal("Key layout")
	}
}

// TestChecker runs the states an object can be in through Path.Check and a Checker, which
// must agree — including for objects created after the Checker opened their directory.
func TestChecker(t *testing.T) {
	const barOID = "37b51d194a7513e45b56f6524f2d51f2" // md5("bar")
	tests := []struct {
		name    string
		setup   func(t *testing.T, p string) // p: the object's path; its directory exists
		wantErr error                        // nil, cache.ErrNotFound, or a *CorruptError (any)
		corrupt bool
	}{
		{"absent", func(t *testing.T, p string) {}, cache.ErrNotFound, false},
		{"read-only", func(t *testing.T, p string) { mustWrite(t, p, "bar", 0o444) }, nil, false},
		{"writable valid", func(t *testing.T, p string) { mustWrite(t, p, "bar", 0o644) }, nil, false},
		{"writable corrupt", func(t *testing.T, p string) { mustWrite(t, p, "baz", 0o644) }, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{"path", "checker"} {
				c := cache.Path(t.TempDir())
				p := c.ObjectPath(barOID, false)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				check := c.Check
				if via == "checker" {
					ck := c.NewChecker()
					defer ck.Close()
					if ck.Has(barOID, false) { // opens the directory before the object exists
						t.Fatal("Has before the object exists")
					}
					check = ck.Check
				}
				tc.setup(t, p)
				err := check(barOID, false)
				var ce *cache.CorruptError
				switch {
				case tc.corrupt:
					if !errors.As(err, &ce) {
						t.Errorf("%s: Check = %v, want *CorruptError", via, err)
					}
				case !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil):
					t.Errorf("%s: Check = %v, want %v", via, err, tc.wantErr)
				}
			}
		})
	}
	ck := cache.Path(t.TempDir()).NewChecker()
	if err := ck.Check(barOID, false); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("object directory missing: %v, want ErrNotFound", err)
	}
	if err := ck.Check("nope", false); err == nil {
		t.Error("invalid oid accepted")
	}
	if err := ck.Close(); err != nil {
		t.Error(err)
	}
}

func mustWrite(t *testing.T, p, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
