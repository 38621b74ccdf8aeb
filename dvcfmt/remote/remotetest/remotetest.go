// Package remotetest is the conformance suite every remote.Remote implementation runs
// (in the spirit of rclone's fstests).
package remotetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
)

// Run checks the behaviour push, pull and status rely on. newRemote must return an empty
// remote each time it is called.
func Run(t *testing.T, newRemote func(t *testing.T) remote.Remote) {
	ctx := context.Background()

	t.Run("StatMissing", func(t *testing.T) {
		r := newRemote(t)
		_, err := r.Stat(ctx, "files/md5/00/0000000000000000000000000000ff")
		if !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("Stat(missing) error = %v, want ErrNotExist", err)
		}
		_, err = r.Open(ctx, "files/md5/00/0000000000000000000000000000ff")
		if !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("Open(missing) error = %v, want ErrNotExist", err)
		}
	})

	t.Run("PutStatOpen", func(t *testing.T) {
		r := newRemote(t)
		cases := []struct{ key, body string }{
			{"files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8", "foo"},
			{"files/md5/d4/1d8cd98f00b204e9800998ecf8427e", ""},
			{"files/md5/5e/a40360f5b4ec688df672a4db9c17d1.dir", `[{"md5": "x", "relpath": "y"}]`},
			{"ab/cdef0123456789abcdef0123456789", strings.Repeat("legacy", 100000)},
		}
		for _, c := range cases {
			if err := r.Put(ctx, c.key, strings.NewReader(c.body), int64(len(c.body))); err != nil {
				t.Fatalf("Put(%s): %v", c.key, err)
			}
		}
		for _, c := range cases {
			info, err := r.Stat(ctx, c.key)
			if err != nil {
				t.Fatalf("Stat(%s): %v", c.key, err)
			}
			if info.Size != int64(len(c.body)) {
				t.Errorf("Stat(%s).Size = %d, want %d", c.key, info.Size, len(c.body))
			}
			rc, err := r.Open(ctx, c.key)
			if err != nil {
				t.Fatalf("Open(%s): %v", c.key, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != c.body {
				t.Errorf("Open(%s) = %d bytes (%v), want %d bytes", c.key, len(got), err, len(c.body))
			}
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		r := newRemote(t)
		key := "files/md5/11/22"
		for _, body := range []string{"first", "second!"} {
			if err := r.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		rc, err := r.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, _ := io.ReadAll(rc)
		if string(got) != "second!" {
			t.Fatalf("after overwrite got %q", got)
		}
	})

	t.Run("InterruptedPutLeavesNothing", func(t *testing.T) {
		r := newRemote(t)
		key := "files/md5/aa/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		err := r.Put(ctx, key, io.MultiReader(strings.NewReader("partial"), errReader{}), 100)
		if err == nil {
			t.Fatal("Put with a failing reader succeeded")
		}
		if _, err := r.Stat(ctx, key); !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("after failed Put, Stat error = %v, want ErrNotExist", err)
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		r := newRemote(t)
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Repeat([]byte{byte(i)}, 1000+i)
				key := fmt.Sprintf("files/md5/%02x/%030x", i, i)
				errs <- r.Put(ctx, key, bytes.NewReader(body), int64(len(body)))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range 32 {
			info, err := r.Stat(ctx, fmt.Sprintf("files/md5/%02x/%030x", i, i))
			if err != nil || info.Size != int64(1000+i) {
				t.Fatalf("object %d: %+v %v", i, info, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		r := newRemote(t)
		l, ok := r.(remote.Lister)
		if !ok {
			t.Skip("remote does not implement Lister (optional capability)")
		}
		want := []string{"files/md5/00/aa", "files/md5/00/bb.dir", "files/md5/ff/cc", "xx/legacy"}
		for _, k := range want {
			if err := r.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		err := l.List(ctx, "files/md5/", func(i remote.Info) error {
			if i.Size != int64(len(i.Key)) {
				t.Errorf("List size of %s = %d", i.Key, i.Size)
			}
			got = append(got, i.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want[:3], ",") {
			t.Fatalf("List(files/md5/) = %v, want %v", got, want[:3])
		}
		n := 0
		if err := l.List(ctx, "files/md5/zz/", func(remote.Info) error { n++; return nil }); err != nil || n != 0 {
			t.Fatalf("List(empty prefix) = %d keys, %v", n, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		r := newRemote(t)
		d, ok := r.(remote.Deleter)
		if !ok {
			t.Skip("remote does not implement Deleter (optional capability)")
		}
		key := "files/md5/de/ad"
		if err := r.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Stat(ctx, key); !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("after Delete, Stat error = %v", err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		r := newRemote(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		key := "files/md5/ca/ncel"
		if err := r.Put(cctx, key, strings.NewReader("data"), 4); err == nil {
			t.Fatal("Put with a canceled context succeeded")
		}
		if _, err := r.Stat(ctx, key); !errors.Is(err, remote.ErrNotExist) {
			t.Fatalf("canceled Put left an object: %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset (injected)") }
