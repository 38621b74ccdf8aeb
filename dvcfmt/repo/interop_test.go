package repo_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/cache"
	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// cacheFiles returns relpath -> bytes of every object in a cache.
func cacheFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := readTree(t, filepath.Join(dir, ".dvc", "cache"))
	for k := range m {
		if strings.HasPrefix(filepath.Base(k), ".") {
			delete(m, k) // temp files
		}
	}
	return m
}

// TestAddMatchesDVC adds the same trees with the real dvc and with catdog and requires
// byte-identical .dvc files, .gitignore files and cache contents (so every .dir object).
func TestAddMatchesDVC(t *testing.T) {
	dvc := testenv.NewDVC(t)
	shared := testenv.SharedData(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, root string)
		paths []string
	}{
		{"awkward-tree", makeTree, []string{"data", "run.sh", "model.bin"}},
		{"empty-dir", func(t *testing.T, root string) {
			os.MkdirAll(filepath.Join(root, "nothing", "inside"), 0o755)
		}, []string{"nothing"}},
		{"subdir-target", func(t *testing.T, root string) {
			makeTree(t, filepath.Join(root, "nested"))
		}, []string{"nested/data/sub", "nested/model.bin"}},
		{"petimages-dev", func(t *testing.T, root string) {
			testenv.CopyTree(t, filepath.Join(shared, "petimages-dev"), filepath.Join(root, "petimages"))
		}, []string{"petimages"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := newGitRepo(t, dvc)
			mine := newGitRepo(t, nil)
			c.setup(t, ref)
			c.setup(t, mine)
			dvc.Run(t, ref, append([]string{"add", "-q"}, c.paths...)...)
			r := mustOpen(t, mine)
			var abs []string
			for _, p := range c.paths {
				abs = append(abs, filepath.Join(mine, p))
			}
			if _, err := r.Add(ctx, abs); err != nil {
				t.Fatal(err)
			}
			for _, p := range c.paths {
				want, got := mustRead(t, filepath.Join(ref, p+".dvc")), mustRead(t, filepath.Join(mine, p+".dvc"))
				if string(want) != string(got) {
					t.Errorf("%s.dvc differs:\n--- dvc ---\n%s--- catdog ---\n%s", p, want, got)
				}
				gi := filepath.Join(filepath.Dir(p), ".gitignore")
				if w, g := mustRead(t, filepath.Join(ref, gi)), mustRead(t, filepath.Join(mine, gi)); string(w) != string(g) {
					t.Errorf("%s differs:\n--- dvc ---\n%s--- catdog ---\n%s", gi, w, g)
				}
			}
			want, got := cacheFiles(t, ref), cacheFiles(t, mine)
			if len(want) == 0 {
				t.Fatal("dvc wrote no cache files")
			}
			var keys []string
			for k := range want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if got[k] != want[k] {
					t.Errorf("cache object %s differs or is missing (dir object: %v)", k, strings.HasSuffix(k, ".dir"))
				}
			}
			if len(got) != len(want) {
				t.Errorf("catdog cache has %d objects, dvc's has %d", len(got), len(want))
			}
			// Objects are read-only, as dvc requires to trust them.
			filepath.WalkDir(filepath.Join(mine, ".dvc", "cache"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, _ := d.Info(); fi.Mode().Perm()&0o222 != 0 {
						t.Errorf("cache object %s is writable (%v)", p, fi.Mode())
					}
				}
				return nil
			})
			// Both tools agree the workspace is clean.
			if out := dvc.Run(t, mine, "status"); !strings.Contains(out, "up to date") {
				t.Errorf("dvc status on catdog's repo:\n%s", out)
			}
			if st, err := mustOpen(t, ref).Status(ctx, nil); err != nil || len(st) != 0 {
				t.Errorf("catdog status on dvc's repo = %v, %v", st, err)
			}
		})
	}
}

// TestRoundTripLocal: catdog add+push -> clone -> dvc pull, and dvc add+push -> clone ->
// catdog pull, on a local remote.
func TestRoundTripLocal(t *testing.T) {
	dvc := testenv.NewDVC(t)
	t.Run("catdog-to-dvc", func(t *testing.T) {
		src := newGitRepo(t, nil)
		makeTree(t, src)
		r := mustOpen(t, src)
		if _, err := r.Add(ctx, []string{filepath.Join(src, "data"), filepath.Join(src, "run.sh")}); err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(t.TempDir(), "store")
		setRemote(t, r, "store", store)
		res, err := r.Push(ctx, repo.TransferOptions{Jobs: 8})
		if err != nil {
			t.Fatal(err)
		}
		if res.Transferred != 12 { // 10 distinct files in data + .dir + run.sh
			t.Errorf("pushed %d objects, want 12", res.Transferred)
		}
		if res, err := r.Push(ctx, repo.TransferOptions{}); err != nil || res.Transferred != 0 {
			t.Errorf("second push = %+v, %v; want nothing to do", res, err)
		}
		clone := commitAndClone(t, src)
		out := dvc.Run(t, clone, "pull")
		if !strings.Contains(out, "A       data/") {
			t.Errorf("dvc pull output:\n%s", out)
		}
		sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
		if fi, err := os.Stat(filepath.Join(clone, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("run.sh after dvc pull: %v %v (want executable)", fi, err)
		}
		upToDate(t, dvc, clone)
		upToDate(t, dvc, src)
	})
	t.Run("dvc-to-catdog", func(t *testing.T) {
		src := newGitRepo(t, dvc)
		makeTree(t, src)
		store := filepath.Join(t.TempDir(), "store")
		dvc.Run(t, src, "add", "-q", "data", "run.sh")
		dvc.Run(t, src, "remote", "add", "-d", "store", store)
		dvc.Run(t, src, "push")
		clone := commitAndClone(t, src)
		r := mustOpen(t, clone)
		res, err := r.Pull(ctx, repo.TransferOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Fetched.Transferred != 12 || len(res.Checkout.Added) != 2 {
			t.Errorf("pull = fetched %d, checkout %+v", res.Fetched.Transferred, res.Checkout)
		}
		sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
		if fi, err := os.Stat(filepath.Join(clone, "run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("run.sh after catdog pull: %v %v (want executable)", fi, err)
		}
		// catdog status agrees with dvc status: clean, then modified, then deleted.
		assertStatusAgrees(t, dvc, r, clone, "")
		os.WriteFile(filepath.Join(clone, "data", "foo"), []byte("changed"), 0o644)
		assertStatusAgrees(t, dvc, r, clone, "modified")
		os.RemoveAll(filepath.Join(clone, "data"))
		assertStatusAgrees(t, dvc, r, clone, "deleted")
		if st, _, err := r.CloudStatus(ctx, repo.TransferOptions{}); err != nil || len(st) != 0 {
			t.Errorf("catdog status -c = %v, %v; want in sync", st, err)
		}
		// checkout restores it.
		if _, err := r.Checkout(ctx, nil, false); err != nil {
			t.Fatal(err)
		}
		sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
		assertStatusAgrees(t, dvc, r, clone, "")
	})
}

func setRemote(t *testing.T, r *repo.Repo, name, url string) {
	t.Helper()
	cfg, err := r.ReadConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Set(`remote "`+name+`"`, "url", url)
	cfg.Set("core", "remote", name)
	if err := r.WriteConfig(false, cfg); err != nil {
		t.Fatal(err)
	}
}

// assertStatusAgrees checks that catdog's and dvc's status of data.dvc say want ("" = clean).
func assertStatusAgrees(t *testing.T, dvc *testenv.DVC, r *repo.Repo, dir, want string) {
	t.Helper()
	st, err := r.Status(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := dvc.Run(t, dir, "status", "--json")
	if want == "" {
		if len(st) != 0 || strings.TrimSpace(out) != "{}" {
			t.Fatalf("want clean: catdog %v, dvc %s", st, out)
		}
		return
	}
	if len(st) != 1 || st[0].Status != want || st[0].DVCFile != "data.dvc" {
		t.Fatalf("catdog status = %+v, want data %s", st, want)
	}
	if !strings.Contains(out, `"data": "`+want+`"`) {
		t.Fatalf("dvc status --json = %s, want data %s", out, want)
	}
}

// TestCheckoutRefusesUnsaved: like dvc, checkout does not discard workspace changes that are
// not in the cache unless forced.
func TestCheckoutRefusesUnsaved(t *testing.T) {
	dir := newGitRepo(t, nil)
	makeTree(t, dir)
	r := mustOpen(t, dir)
	if _, err := r.Add(ctx, []string{filepath.Join(dir, "data")}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "data", "foo"), []byte("unsaved edit"), 0o644)
	os.WriteFile(filepath.Join(dir, "data", "extra"), []byte("unsaved new file"), 0o644)
	_, err := r.Checkout(ctx, nil, false)
	var ue *repo.UnsavedError
	if !errors.As(err, &ue) || len(ue.Paths) != 2 {
		t.Fatalf("checkout error = %v, want UnsavedError for 2 files", err)
	}
	if b := mustRead(t, filepath.Join(dir, "data", "foo")); string(b) != "unsaved edit" {
		t.Fatal("refused checkout still changed the file")
	}
	res, err := r.Checkout(ctx, nil, true)
	if err != nil || len(res.Modified) != 1 {
		t.Fatalf("forced checkout = %+v, %v", res, err)
	}
	if b := mustRead(t, filepath.Join(dir, "data", "foo")); string(b) != "foo" {
		t.Fatalf("data/foo = %q after forced checkout", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "extra")); !os.IsNotExist(err) {
		t.Fatal("extra file survived a forced checkout")
	}
}

// TestLinkTypes: hardlink and symlink caches as configured by cache.type, accepted by dvc.
func TestLinkTypes(t *testing.T) {
	dvc := testenv.NewDVC(t)
	for _, typ := range []string{"hardlink", "symlink", "reflink,copy"} {
		t.Run(typ, func(t *testing.T) {
			dir := newGitRepo(t, nil)
			makeTree(t, dir)
			r := mustOpen(t, dir)
			cfg, _ := r.ReadConfig(false)
			cfg.Set("cache", "type", typ)
			if err := r.WriteConfig(false, cfg); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Add(ctx, []string{filepath.Join(dir, "data")}); err != nil {
				t.Fatal(err)
			}
			foo := filepath.Join(dir, "data", "foo")
			obj := r.Cache.ObjectPath("acbd18db4cc2f85cedef654fccc4a4d8", false)
			check := func(when string) {
				lfi, err := os.Lstat(foo)
				if err != nil {
					t.Fatal(err)
				}
				ofi, _ := os.Stat(obj)
				switch typ {
				case "hardlink":
					if !os.SameFile(lfi, ofi) {
						t.Errorf("%s: data/foo is not a hard link to its cache object", when)
					}
				case "symlink":
					if dst, _ := os.Readlink(foo); dst != obj {
						t.Errorf("%s: data/foo -> %q, want %q", when, dst, obj)
					}
				default:
					if os.SameFile(lfi, ofi) || lfi.Mode()&fs.ModeSymlink != 0 {
						t.Errorf("%s: data/foo should be an independent copy", when)
					}
				}
			}
			check("after add")
			os.RemoveAll(filepath.Join(dir, "data"))
			if _, err := r.Checkout(ctx, nil, false); err != nil {
				t.Fatal(err)
			}
			check("after checkout")
			if out := dvc.Run(t, dir, "status"); !strings.Contains(out, "up to date") {
				t.Errorf("dvc status:\n%s", out)
			}
		})
	}
}

// TestLegacyDVC2Pull: a .dvc file written by dvc 2 (no `hash: md5`, md5-dos2unix, legacy
// layout) is pulled and checked out, and the CRLF text file keeps its bytes.
func TestLegacyDVC2Pull(t *testing.T) {
	dir := newGitRepo(t, nil)
	store := filepath.Join(t.TempDir(), "store")
	// dos2unix md5 of "a\r\nb\r\n" == md5("a\nb\n").
	crlf := "a\r\nb\r\n"
	objs := map[string]string{
		"d8/0ec1e3b4f6b4e8ce5b7e3d0ae4f6b2": "", // placeholder replaced below
	}
	delete(objs, "d8/0ec1e3b4f6b4e8ce5b7e3d0ae4f6b2")
	fileOID := md5hex("a\nb\n")
	bin := "\x00\x01\r\n"
	binOID := md5hex(bin)
	dirJSON := `[{"md5": "` + binOID + `", "relpath": "bin"}, {"md5": "` + fileOID + `", "relpath": "text.txt"}]`
	dirOID := md5hex(dirJSON) + ".dir"
	objs[fileOID[:2]+"/"+fileOID[2:]] = crlf
	objs[binOID[:2]+"/"+binOID[2:]] = bin
	objs[dirOID[:2]+"/"+dirOID[2:]] = dirJSON
	for k, v := range objs {
		p := filepath.Join(store, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v), 0o444)
	}
	os.WriteFile(filepath.Join(dir, "old.dvc"), []byte("outs:\n- md5: "+dirOID+"\n  size: 10\n  nfiles: 2\n  path: old\n"), 0o644)
	r := mustOpen(t, dir)
	setRemote(t, r, "store", store)
	if _, err := r.Pull(ctx, repo.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, filepath.Join(dir, "old", "text.txt"))); got != crlf {
		t.Fatalf("text.txt = %q, want %q", got, crlf)
	}
	if _, err := os.Stat(r.Cache.ObjectPath(fileOID, true)); err != nil {
		t.Fatalf("legacy object not in the legacy cache layout: %v", err)
	}
	if st, err := r.Status(ctx, nil); err != nil || len(st) != 0 {
		t.Fatalf("status of a legacy out = %v, %v", st, err)
	}
	dvc := testenv.NewDVC(t)
	if out := dvc.Run(t, dir, "status"); !strings.Contains(out, "up to date") {
		t.Errorf("dvc status on the legacy out:\n%s", out)
	}
	_ = cache.ErrNotFound
}

// TestGC: after re-adding changed data, gc drops the old objects and keeps what the
// workspace uses; dvc still finds the repository consistent.
func TestGC(t *testing.T) {
	dir := newGitRepo(t, nil)
	makeTree(t, dir)
	r := mustOpen(t, dir)
	if _, err := r.Add(ctx, []string{filepath.Join(dir, "data")}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "data", "foo"), []byte("foo v2"), 0o644)
	if _, err := r.Add(ctx, []string{filepath.Join(dir, "data")}); err != nil {
		t.Fatal(err)
	}
	n, err := r.GC(ctx)
	if err != nil || n != 2 { // old foo object + old .dir
		t.Fatalf("GC = %d, %v; want 2 objects removed", n, err)
	}
	if r.Cache.Has("acbd18db4cc2f85cedef654fccc4a4d8", false) {
		t.Error("old data/foo object survived gc")
	}
	if st, err := r.Status(ctx, nil); err != nil || len(st) != 0 {
		t.Errorf("status after gc = %v, %v", st, err)
	}
	if out := testenv.NewDVC(t).Run(t, dir, "status"); !strings.Contains(out, "up to date") {
		t.Errorf("dvc status after gc:\n%s", out)
	}
}
