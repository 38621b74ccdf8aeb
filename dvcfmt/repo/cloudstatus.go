package repo

import (
	"context"
	"sort"
)

// Cloud statuses, worded as `dvc status -c` prints them.
const (
	CloudNew     = "new"     // in the cache only
	CloudDeleted = "deleted" // on the remote only
	CloudMissing = "missing" // in neither
)

// CloudStatus is one object that is not in sync between cache and remote.
type CloudStatus struct {
	Name   string // output name, or output/relpath for files inside a directory
	Status string
}

// CloudStatus compares the cache with the remote like `dvc status -c`. Objects present on
// both sides are not listed.
func (r *Repo) CloudStatus(ctx context.Context, opts TransferOptions) ([]CloudStatus, string, error) {
	rem, name, err := r.store(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	outs, err := r.Outputs(ctx, opts.Targets)
	if err != nil {
		return nil, name, err
	}
	groups := r.collect(ctx, outs, rem, false)
	var all []object
	for _, g := range groups {
		if g.dir != nil {
			all = append(all, *g.dir)
		}
		all = append(all, g.files...)
	}
	has, err := remoteHas(ctx, rem, all, opts.jobs())
	if err != nil {
		return nil, name, err
	}
	var res []CloudStatus
	for _, ob := range all {
		inCache := r.Cache.Has(ob.oid, ob.legacy)
		onRemote := has[ob.key()]
		switch {
		case inCache && !onRemote:
			res = append(res, CloudStatus{Name: ob.name, Status: CloudNew})
		case !inCache && onRemote:
			res = append(res, CloudStatus{Name: ob.name, Status: CloudDeleted})
		case !inCache && !onRemote:
			res = append(res, CloudStatus{Name: ob.name, Status: CloudMissing})
		}
	}
	for _, g := range groups {
		if g.err != nil {
			res = append(res, CloudStatus{Name: g.out.Name, Status: CloudMissing})
		}
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res, name, nil
}
