package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
)

// Push uploads the objects of the tracked outputs that the remote lacks. A directory's
// files go first; its .dir object is uploaded last and only when every file is on the
// remote, because dvc takes a remote .dir as proof that all of its files are there.
func (r *Repo) Push(ctx context.Context, opts TransferOptions) (*TransferResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rem, name, err := r.store(ctx, opts)
	if err != nil {
		return nil, err
	}
	outs, err := r.Outputs(ctx, opts.Targets)
	if err != nil {
		return nil, err
	}
	res := &TransferResult{Remote: name}
	groups := r.collect(ctx, outs, nil, false)
	var failed []ObjectError
	var all []object
	for _, g := range groups {
		if g.err != nil {
			failed = append(failed, ObjectError{Name: g.out.Name, OID: g.out.Out.MD5, Err: fmt.Errorf("directory object not in cache: %w", g.err)})
			continue
		}
		all = append(all, g.files...)
		if g.dir != nil {
			all = append(all, *g.dir)
		}
	}
	has, err := remoteHas(ctx, rem, all, opts.jobs())
	if err != nil {
		return nil, fmt.Errorf("checking remote %s: %w", name, err)
	}
	// Files first.
	var files []object
	seen := map[string]bool{}
	for _, g := range groups {
		for _, f := range g.files {
			if !has[f.key()] && !seen[f.key()] {
				seen[f.key()] = true
				files = append(files, f)
			}
		}
	}
	fileErr := map[string]error{}
	var mu sync.Mutex
	_ = runParallel(ctx, len(files), opts.jobs(), r.o.progress.Count("Pushing", int64(len(files))), func(i int) error {
		err := r.upload(ctx, rem, files[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fileErr[files[i].key()] = err
			failed = append(failed, ObjectError{Name: files[i].name, OID: files[i].oid, Err: err})
			return nil
		}
		has[files[i].key()] = true
		res.Transferred++
		return nil
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Then each .dir, only when all of its files made it.
	for _, g := range groups {
		if g.dir == nil || g.err != nil || has[g.dir.key()] {
			continue
		}
		complete := true
		for _, f := range g.files {
			if !has[f.key()] {
				complete = false
				break
			}
		}
		if !complete {
			failed = append(failed, ObjectError{Name: g.dir.name, OID: g.dir.oid, Err: errors.New("not uploaded: some of its files failed")})
			continue
		}
		if err := r.upload(ctx, rem, *g.dir); err != nil {
			failed = append(failed, ObjectError{Name: g.dir.name, OID: g.dir.oid, Err: err})
			continue
		}
		has[g.dir.key()] = true
		res.Transferred++
	}
	if len(failed) > 0 {
		sortFailed(failed)
		return res, &TransferError{Op: "push", Failed: failed}
	}
	return res, nil
}

func sortFailed(f []ObjectError) { sort.Slice(f, func(i, j int) bool { return f[i].Name < f[j].Name }) }

func (r *Repo) upload(ctx context.Context, rem remote.Remote, ob object) error {
	if err := r.Cache.Check(ob.oid, ob.legacy); err != nil {
		return err
	}
	f, err := r.Cache.Open(ob.oid, ob.legacy)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return rem.Put(ctx, ob.key(), f, fi.Size())
}
