package repo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// GC removes cache objects that no .dvc file of the workspace uses (`dvc gc --workspace`).
// It refuses to run when a directory output's .dir object is missing, since the files it
// lists could not be told apart from garbage. It returns the number of objects removed.
func (r *Repo) GC(ctx context.Context) (int, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return 0, err
	}
	defer unlock()
	outs, err := r.Outputs(ctx, nil)
	if err != nil {
		return 0, err
	}
	used := map[string]bool{}
	for _, o := range outs {
		if o.Out.MD5 == "" || !o.Out.UsesCache() {
			continue
		}
		legacy := o.Out.Legacy()
		used[r.Cache.ObjectPath(o.Out.MD5, legacy)] = true
		if !o.Out.IsDir() {
			continue
		}
		entries, err := r.loadDir(o.Out)
		if err != nil {
			return 0, fmt.Errorf("gc: %s: directory object unavailable (%w); pull or fetch it first", o.Name, err)
		}
		for _, e := range entries {
			used[r.Cache.ObjectPath(e.MD5, legacy)] = true
		}
	}
	removed := 0
	root := string(r.Cache)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			// files/md5/xx (DVC 3) and xx (legacy); skip runs/, fs/ and anything else.
			switch {
			case rel == ".", rel == "files", rel == filepath.Join("files", "md5"):
				return nil
			case len(parts) == 3 && parts[0] == "files" && parts[1] == "md5" && len(parts[2]) == 2:
				return nil
			case len(parts) == 1 && len(parts[0]) == 2:
				return nil
			}
			return filepath.SkipDir
		}
		name := parts[len(parts)-2] + parts[len(parts)-1]
		if !dvcfmt.ValidOID(name) || used[p] {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		removed++
		return nil
	})
	return removed, err
}
