package repo

import (
	"context"
	"errors"
	"sync"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
)

// Fetch downloads the objects of the tracked outputs that the cache lacks. Every object is
// hashed while it streams into a temp file and enters the cache only when its hash matches
// its name; corrupt and missing objects are reported in a *TransferError.
func (r *Repo) Fetch(ctx context.Context, opts TransferOptions) (*TransferResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return r.fetch(ctx, opts)
}

func (r *Repo) fetch(ctx context.Context, opts TransferOptions) (*TransferResult, error) {
	rem, name, err := r.store(ctx, opts)
	if err != nil {
		return nil, err
	}
	outs, err := r.Outputs(ctx, opts.Targets)
	if err != nil {
		return nil, err
	}
	res := &TransferResult{Remote: name}
	dirsBefore := map[string]bool{}
	for _, o := range outs {
		if o.Out.IsDir() {
			dirsBefore[o.Out.MD5] = r.Cache.Has(o.Out.MD5, o.Out.Legacy())
		}
	}
	groups := r.collect(ctx, outs, rem, true)
	for _, g := range groups {
		if g.dir != nil && g.err == nil && !dirsBefore[g.dir.oid] {
			dirsBefore[g.dir.oid] = true
			res.Transferred++ // the .dir object came from the remote
		}
	}
	var failed []ObjectError
	var need []object
	seen := map[string]bool{}
	for _, g := range groups {
		if g.err != nil {
			failed = append(failed, ObjectError{Name: g.out.Name, OID: g.out.Out.MD5, Err: g.err})
			continue
		}
		if g.dir != nil && !seen[g.dir.key()] {
			seen[g.dir.key()] = true
		}
		for _, f := range g.files {
			if !seen[f.key()] {
				seen[f.key()] = true
				need = append(need, f)
			}
		}
	}
	// Drop what the cache already has (stat only for trusted read-only objects).
	var mu sync.Mutex
	var todo []object
	_ = runParallel(ctx, len(need), r.o.jobs, nil, func(i int) error {
		if !r.Cache.Has(need[i].oid, need[i].legacy) {
			mu.Lock()
			todo = append(todo, need[i])
			mu.Unlock()
		}
		return nil
	})
	_ = runParallel(ctx, len(todo), opts.jobs(), r.o.progress.Count("Fetching", int64(len(todo))), func(i int) error {
		err := r.download(ctx, rem, todo[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, ObjectError{Name: todo[i].name, OID: todo[i].oid, Err: err})
			return nil
		}
		res.Transferred++
		return nil
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(failed) > 0 {
		sortFailed(failed)
		return res, &TransferError{Op: "fetch", Failed: failed}
	}
	return res, nil
}

func (r *Repo) download(ctx context.Context, rem remote.Remote, ob object) error {
	rc, err := rem.Open(ctx, ob.key())
	if err != nil {
		return err
	}
	defer rc.Close()
	return r.Cache.Put(ctx, ob.oid, ob.legacy, rc)
}

// PullResult is what Pull fetched and checked out.
type PullResult struct {
	Fetched  *TransferResult
	Checkout *CheckoutResult
}

// Pull is Fetch followed by Checkout of the same outputs. Outputs whose objects could not
// be fetched are left as they are and reported.
func (r *Repo) Pull(ctx context.Context, opts TransferOptions) (*PullResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	fres, ferr := r.fetch(ctx, opts)
	if ferr != nil && fres == nil {
		return nil, ferr
	}
	outs, err := r.Outputs(ctx, opts.Targets)
	if err != nil {
		return nil, err
	}
	cres, cerr := r.checkout(ctx, outs, opts.Force)
	var mce *MissingCacheError
	if ferr != nil && errors.As(cerr, &mce) {
		cerr = nil // already reported by fetch
	}
	return &PullResult{Fetched: fres, Checkout: cres}, errors.Join(ferr, cerr)
}
