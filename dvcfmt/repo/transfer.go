package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/cache"
	"github.com/catdog-mlops/catdog/dvcfmt/remote"
	"github.com/catdog-mlops/catdog/dvcfmt/remote/s3remote"
)

// TransferOptions configures Push, Fetch, Pull and CloudStatus.
type TransferOptions struct {
	// Remote names the configured remote; empty means core.remote.
	Remote string
	// Store, when set, is used instead of opening the named remote (tests, fault injection).
	Store remote.Remote
	// Jobs is the number of parallel transfers. Default 4 × NumCPU, dvc's default.
	Jobs int
	// Targets limits the operation to some .dvc files or outputs; empty means all.
	Targets []string
	// Force lets Pull's checkout overwrite unsaved workspace changes.
	Force bool
}

// ErrNoRemote is returned when no remote is named and core.remote is unset.
var ErrNoRemote = errors.New("no remote provided and no default remote set")

// ObjectError is one object that could not be transferred.
type ObjectError struct {
	Name string // output-relative name, e.g. data/cat/1.jpg
	OID  string
	Err  error
}

// TransferError lists the objects a transfer failed on; the others were transferred.
type TransferError struct {
	Op     string
	Failed []ObjectError
}

func (e *TransferError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed for %d object(s):", e.Op, len(e.Failed))
	for i, f := range e.Failed {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Failed)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s (%s): %v", f.Name, f.OID, f.Err)
	}
	return b.String()
}

// Unwrap returns the individual causes (errors.As finds a *cache.CorruptError among them).
func (e *TransferError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// TransferResult counts what a transfer moved.
type TransferResult struct {
	Transferred int
	Remote      string
}

// RemoteName resolves the remote to use (name, or core.remote).
func (r *Repo) RemoteName(name string) (string, error) {
	if name == "" {
		name, _ = r.cfg.Get("core", "remote")
	}
	if name == "" {
		return "", ErrNoRemote
	}
	if r.cfg.Section(strings.ToLower(dvcfmt.RemoteSection(name))) == nil {
		return "", fmt.Errorf("remote %q does not exist", name)
	}
	return name, nil
}

// OpenRemote opens a configured remote: a local directory or an s3:// URL (with dvc-s3's
// endpointurl, region, access_key_id, secret_access_key, session_token and profile options,
// falling back to the AWS environment).
func (r *Repo) OpenRemote(ctx context.Context, name string) (remote.Remote, string, error) {
	name, err := r.RemoteName(name)
	if err != nil {
		return nil, "", err
	}
	sec := dvcfmt.RemoteSection(name)
	url, _ := r.cfg.Get(sec, "url")
	if url == "" {
		return nil, "", fmt.Errorf("remote %q has no url", name)
	}
	get := func(k string) string { v, _ := r.cfg.Get(sec, k); return v }
	switch {
	case strings.HasPrefix(url, "s3://"):
		bucket, prefix, err := s3remote.ParseURL(url)
		if err != nil {
			return nil, "", err
		}
		var opts []s3remote.Option
		if v := get("endpointurl"); v != "" {
			opts = append(opts, s3remote.WithEndpoint(v))
		}
		if v := get("region"); v != "" {
			opts = append(opts, s3remote.WithRegion(v))
		}
		if v := get("profile"); v != "" {
			opts = append(opts, s3remote.WithProfile(v))
		}
		if v := get("access_key_id"); v != "" {
			opts = append(opts, s3remote.WithStaticCredentials(v, get("secret_access_key"), get("session_token")))
		}
		s, err := s3remote.New(ctx, bucket, prefix, opts...)
		if err != nil {
			return nil, "", err
		}
		return s, name, nil
	case strings.Contains(url, "://"):
		return nil, "", fmt.Errorf("remote %q: unsupported URL scheme in %q (local paths and s3:// are supported)", name, url)
	default:
		if !filepath.IsAbs(url) {
			url = filepath.Join(r.Root, DvcDir, url) // relative to the config file's directory
		}
		return remote.NewLocal(url), name, nil
	}
}

func (o TransferOptions) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return 4 * runtime.NumCPU()
}

func (r *Repo) store(ctx context.Context, o TransferOptions) (remote.Remote, string, error) {
	if o.Store != nil {
		return o.Store, o.Store.String(), nil
	}
	return r.OpenRemote(ctx, o.Remote)
}

// object is one cache object an output needs.
type object struct {
	oid    string
	legacy bool
	name   string
}

func (ob object) key() string { return cache.Key(ob.oid, ob.legacy) }

// outObjects is an output's objects: its .dir (dirs only) and its files.
type outObjects struct {
	out   Output
	dir   *object
	files []object
	err   error // the .dir could not be loaded
}

// collect lists the objects of outs. For directory outputs the .dir object comes from the
// cache, else (fromRemote != nil) from the remote: it is then stored in the cache when
// storeDir is true, or only read.
func (r *Repo) collect(ctx context.Context, outs []Output, fromRemote remote.Remote, storeDir bool) []outObjects {
	var res []outObjects
	for _, o := range outs {
		if !o.Out.Pushed() || o.Out.MD5 == "" {
			continue
		}
		legacy := o.Out.Legacy()
		oo := outObjects{out: o}
		if !o.Out.IsDir() {
			oo.files = []object{{oid: o.Out.MD5, legacy: legacy, name: o.Name}}
			res = append(res, oo)
			continue
		}
		oo.dir = &object{oid: o.Out.MD5, legacy: legacy, name: o.Name}
		entries, err := r.loadDir(o.Out)
		if err != nil && fromRemote != nil {
			entries, err = r.remoteDir(ctx, fromRemote, *oo.dir, storeDir)
		}
		if err != nil {
			oo.err = err
			res = append(res, oo)
			continue
		}
		for _, e := range entries {
			oo.files = append(oo.files, object{oid: e.MD5, legacy: legacy, name: o.Name + "/" + e.RelPath})
		}
		res = append(res, oo)
	}
	return res
}

// remoteDir reads a .dir object from the remote, verifying its hash.
func (r *Repo) remoteDir(ctx context.Context, rem remote.Remote, ob object, store bool) ([]dvcfmt.DirEntry, error) {
	rc, err := rem.Open(ctx, ob.key())
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(limitReader(rc, dvcfmt.MaxDirBytes)); err != nil {
		return nil, err
	}
	oid, _, _ := dvcfmt.HashReader(bytes.NewReader(buf.Bytes()), ob.legacy)
	if oid != strings.TrimSuffix(ob.oid, dvcfmt.DirSuffix) {
		return nil, &cache.CorruptError{OID: ob.oid, Got: oid}
	}
	entries, err := dvcfmt.ParseDir(buf.Bytes())
	if err != nil {
		return nil, err
	}
	if store {
		if err := r.Cache.Put(ctx, ob.oid, ob.legacy, bytes.NewReader(buf.Bytes())); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// remoteHas returns which of objs exist on the remote: one listing of files/md5/ when the
// remote can list and many objects are involved, else one Stat per object.
func remoteHas(ctx context.Context, rem remote.Remote, objs []object, jobs int) (map[string]bool, error) {
	has := make(map[string]bool, len(objs))
	uniq := map[string]object{}
	for _, ob := range objs {
		uniq[ob.key()] = ob
	}
	var toStat []object
	if l, ok := rem.(remote.Lister); ok && len(uniq) > 64 {
		err := l.List(ctx, "files/md5/", func(i remote.Info) error {
			if _, want := uniq[i.Key]; want {
				has[i.Key] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for k, ob := range uniq {
			if ob.legacy && !has[k] {
				toStat = append(toStat, ob)
			}
		}
	} else {
		for _, ob := range uniq {
			toStat = append(toStat, ob)
		}
	}
	var mu sync.Mutex
	err := runParallel(ctx, len(toStat), jobs, nil, func(i int) error {
		_, err := rem.Stat(ctx, toStat[i].key())
		if errors.Is(err, remote.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		has[toStat[i].key()] = true
		mu.Unlock()
		return nil
	})
	return has, err
}
