package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/dvcfmt/cache"
	"github.com/catdog-mlops/catdog/dvcfmt/remote"
	"github.com/catdog-mlops/catdog/dvcfmt/remote/s3remote"
	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// backend is a remote kind the transfer tests run against.
type backend struct {
	name string
	// configure points a repo's config at a fresh remote and returns a handle on it.
	configure func(t *testing.T, dir string) remote.Remote
	env       []string // extra environment for the real dvc
}

func backends(t *testing.T) []backend {
	local := backend{name: "local", configure: func(t *testing.T, dir string) remote.Remote {
		store := filepath.Join(t.TempDir(), "store")
		writeConfig(t, dir, "[core]\n    remote = store\n['remote \"store\"']\n    url = "+store+"\n", "")
		return remote.NewLocal(store)
	}}
	srv := testenv.StartS3(t)
	var n atomic.Int64
	s3 := backend{name: "s3", env: srv.Env(), configure: func(t *testing.T, dir string) remote.Remote {
		bucket := fmt.Sprintf("dvc-%d", n.Add(1))
		r, err := s3remote.New(context.Background(), bucket, "store/prefix", s3remote.WithEndpoint(srv.Endpoint),
			s3remote.WithRegion(srv.Region), s3remote.WithStaticCredentials(srv.AccessKey, srv.SecretKey, ""))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CreateBucket(context.Background()); err != nil {
			t.Fatal(err)
		}
		// URL and endpoint in .dvc/config, credentials in config.local (as a team would).
		writeConfig(t, dir, "[core]\n    remote = s3store\n['remote \"s3store\"']\n    url = s3://"+bucket+"/store/prefix\n    endpointurl = "+srv.Endpoint+"\n    region = "+srv.Region+"\n",
			"['remote \"s3store\"']\n    access_key_id = "+srv.AccessKey+"\n    secret_access_key = "+srv.SecretKey+"\n")
		return r
	}}
	return []backend{local, s3}
}

func writeConfig(t *testing.T, dir, cfg, local string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, ".dvc", "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if local != "" {
		if err := os.WriteFile(filepath.Join(dir, ".dvc", "config.local"), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// genFiles adds n small distinct files under data/gen.
func genFiles(t *testing.T, root string, n int) {
	t.Helper()
	dir := filepath.Join(root, "data", "gen")
	os.MkdirAll(dir, 0o755)
	for i := range n {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.txt", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644)
	}
}

// TestTransfers runs the push/pull interop, corruption and interrupted-push scenarios on a
// local remote and on S3 (moto), against the real dvc.
func TestTransfers(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			dvc := testenv.NewDVC(t)
			dvc.Env = append(dvc.Env, b.env...)
			t.Run("catdog-push-dvc-pull", func(t *testing.T) {
				src := newGitRepo(t, nil)
				makeTree(t, src)
				b.configure(t, src)
				r := mustOpen(t, src)
				if _, err := r.Add(ctx, []string{filepath.Join(src, "data")}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.Push(ctx, repo.TransferOptions{Jobs: 8}); err != nil {
					t.Fatal(err)
				}
				if st, _, err := r.CloudStatus(ctx, repo.TransferOptions{}); err != nil || len(st) != 0 {
					t.Fatalf("catdog status -c after push = %v, %v", st, err)
				}
				clone := commitAndClone(t, src)
				copyLocalConfig(t, src, clone)
				dvc.Run(t, clone, "pull")
				sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
				upToDate(t, dvc, clone)
			})
			t.Run("dvc-push-catdog-pull", func(t *testing.T) {
				src := newGitRepo(t, dvc)
				makeTree(t, src)
				b.configure(t, src)
				dvc.Run(t, src, "add", "-q", "data")
				dvc.Run(t, src, "push")
				clone := commitAndClone(t, src)
				copyLocalConfig(t, src, clone)
				r := mustOpen(t, clone)
				st, _, err := r.CloudStatus(ctx, repo.TransferOptions{})
				if err != nil || len(st) != 12 || st[0].Status != repo.CloudDeleted {
					t.Fatalf("catdog status -c before pull = %v, %v; want 12 deleted (remote only)", st, err)
				}
				if _, err := r.Pull(ctx, repo.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
				if st, err := r.Status(ctx, nil); err != nil || len(st) != 0 {
					t.Fatalf("catdog status after pull = %v, %v", st, err)
				}
				upToDate(t, dvc, clone)
			})
			t.Run("corrupt-object", func(t *testing.T) {
				src := newGitRepo(t, nil)
				makeTree(t, src)
				rem := b.configure(t, src)
				r := mustOpen(t, src)
				if _, err := r.Add(ctx, []string{filepath.Join(src, "data")}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.Push(ctx, repo.TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				fooOID := "acbd18db4cc2f85cedef654fccc4a4d8"
				corrupt(t, rem, cache.Key(fooOID, false), "not foo")
				clone := commitAndClone(t, src)
				copyLocalConfig(t, src, clone)
				rc := mustOpen(t, clone)
				_, err := rc.Pull(ctx, repo.TransferOptions{})
				var ce *cache.CorruptError
				var te *repo.TransferError
				if !errors.As(err, &ce) || !errors.As(err, &te) || len(te.Failed) != 1 || te.Failed[0].Name != "data/foo" {
					t.Fatalf("pull of a corrupt object: %v; want one *cache.CorruptError for data/foo", err)
				}
				if _, err := os.Stat(rc.Cache.ObjectPath(fooOID, false)); !os.IsNotExist(err) {
					t.Fatalf("corrupt object entered the cache: %v", err)
				}
				// Every other object arrived.
				if !rc.Cache.Has("9dd4e461268c8034f5c8564e155c67a6", false) {
					t.Fatal("sound objects were not fetched")
				}
				if !strings.Contains(err.Error(), "corrupt object "+fooOID) {
					t.Fatalf("error does not name the object clearly: %v", err)
				}
			})
			t.Run("interrupted-push", func(t *testing.T) {
				src := newGitRepo(t, nil)
				makeTree(t, src)
				genFiles(t, src, 150)
				rem := b.configure(t, src)
				r := mustOpen(t, src)
				res, err := r.Add(ctx, []string{filepath.Join(src, "data")})
				if err != nil {
					t.Fatal(err)
				}
				dirKey := cache.Key(res[0].Out.MD5, false)
				killPushHalfway(t, src, rem, 40)
				if _, err := rem.Stat(ctx, dirKey); !errors.Is(err, remote.ErrNotExist) {
					t.Fatalf(".dir object on the remote after an interrupted push: %v", err)
				}
				pres, err := r.Push(ctx, repo.TransferOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if pres.Transferred == 0 || pres.Transferred >= 160 {
					t.Errorf("resumed push transferred %d objects; want only the rest", pres.Transferred)
				}
				clone := commitAndClone(t, src)
				copyLocalConfig(t, src, clone)
				dvc.Run(t, clone, "pull")
				sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
				upToDate(t, dvc, clone)
			})
		})
	}
}

func copyLocalConfig(t *testing.T, src, dst string) {
	if b, err := os.ReadFile(filepath.Join(src, ".dvc", "config.local")); err == nil {
		os.WriteFile(filepath.Join(dst, ".dvc", "config.local"), b, 0o644)
	}
}

func corrupt(t *testing.T, rem remote.Remote, key, body string) {
	t.Helper()
	if l, ok := rem.(*remote.Local); ok {
		p := filepath.Join(l.String(), filepath.FromSlash(key))
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := rem.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
}

// killPushHalfway runs a push in a child process (this test binary, see
// TestPushHelperProcess) and SIGKILLs it once at least after objects are on the remote.
func killPushHalfway(t *testing.T, dir string, rem remote.Remote, after int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushHelperProcess$")
	cmd.Env = append(os.Environ(), "CATDOG_PUSH_HELPER_REPO="+dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := countObjects(t, rem)
		if n >= after {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("push helper made no progress (%d objects):\n%s", n, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("push helper was not killed mid-push (%v):\n%s", err, out)
	}
}

func countObjects(t *testing.T, rem remote.Remote) int {
	n := 0
	_ = rem.(remote.Lister).List(ctx, "files/md5/", func(remote.Info) error { n++; return nil })
	return n
}

// TestPushHelperProcess is not a test: it is the child process killPushHalfway kills. It
// pushes slowly (one object per 30 ms on two workers) so the parent can kill it midway.
func TestPushHelperProcess(t *testing.T) {
	dir := os.Getenv("CATDOG_PUSH_HELPER_REPO")
	if dir == "" {
		return // only meaningful as a child of killPushHalfway
	}
	r, err := repo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rem, _, err := r.OpenRemote(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(ctx, repo.TransferOptions{Store: slowRemote{rem}, Jobs: 2})
	t.Fatalf("push finished before it was killed: %v", err)
}

type slowRemote struct{ remote.Remote }

func (s slowRemote) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	time.Sleep(30 * time.Millisecond)
	return s.Remote.Put(ctx, key, r, size)
}

// TestInterruptedPullResumes: a fetch that dies halfway (the remote starts failing) keeps
// what it verified; re-running fetches only the rest and the checkout is complete.
func TestInterruptedPullResumes(t *testing.T) {
	src := newGitRepo(t, nil)
	makeTree(t, src)
	genFiles(t, src, 60)
	store := filepath.Join(t.TempDir(), "store")
	r := mustOpen(t, src)
	setRemote(t, r, "store", store)
	if _, err := r.Add(ctx, []string{filepath.Join(src, "data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, repo.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	clone := commitAndClone(t, src)
	rc := mustOpen(t, clone)
	flaky := &failAfter{Remote: remote.NewLocal(store), n: 30}
	first, err := rc.Pull(ctx, repo.TransferOptions{Store: flaky, Jobs: 4})
	var te *repo.TransferError
	if !errors.As(err, &te) || first.Fetched.Transferred == 0 {
		t.Fatalf("flaky pull = %+v, %v; want a partial fetch and a TransferError", first, err)
	}
	if _, err := os.Stat(filepath.Join(clone, "data")); err == nil {
		if st, _ := rc.Status(ctx, nil); len(st) == 0 {
			t.Fatal("a partial pull produced a complete-looking workspace")
		}
	}
	second, err := rc.Pull(ctx, repo.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if total := first.Fetched.Transferred + second.Fetched.Transferred; total != 71 { // 70 distinct files + .dir
		t.Errorf("fetched %d + %d objects, want 71 in total", first.Fetched.Transferred, second.Fetched.Transferred)
	}
	sameTree(t, filepath.Join(src, "data"), filepath.Join(clone, "data"), isTmp)
}

// failAfter is a remote whose Open starts failing after n calls (a dropped connection).
type failAfter struct {
	remote.Remote
	n     int64
	calls atomic.Int64
}

func (f *failAfter) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if f.calls.Add(1) > f.n {
		return nil, errors.New("connection reset by peer (injected)")
	}
	return f.Remote.Open(ctx, key)
}

// TestS3CredentialsFromEnvironment: with only url and endpointurl in .dvc/config, the
// credentials come from the usual AWS_* variables.
func TestS3CredentialsFromEnvironment(t *testing.T) {
	srv := testenv.StartS3(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	r0, err := s3remote.New(ctx, "envbucket", "", s3remote.WithEndpoint(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	if err := r0.CreateBucket(ctx); err != nil {
		t.Fatal(err)
	}
	dir := newGitRepo(t, nil)
	makeTree(t, dir)
	writeConfig(t, dir, "[core]\n    remote = s3\n['remote \"s3\"']\n    url = s3://envbucket/x\n    endpointurl = "+srv.Endpoint+"\n", "")
	r := mustOpen(t, dir)
	if _, err := r.Add(ctx, []string{filepath.Join(dir, "run.sh")}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Push(ctx, repo.TransferOptions{})
	if err != nil || res.Transferred != 1 {
		t.Fatalf("push = %+v, %v", res, err)
	}
	const runSh = "46bbbe8aa98cc0714426e948474eaaf4" // md5 of run.sh
	if _, err := r0.Stat(ctx, "x/"+cache.Key(runSh, false)); err != nil {
		t.Fatalf("run.sh not at s3://envbucket/x/files/md5/46/...: %v", err)
	}
}
