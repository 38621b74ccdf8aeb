// Package atomicfile writes files that other processes read so that a reader sees either the
// old content or the new content, never a partial file: the bytes go to a uniquely named temp
// file in the target's directory, are fsynced, given their mode and renamed over the target;
// on any error the temp file is removed and the target is untouched.
//
// It is the one implementation used by every package that writes such a file (model
// directories, prepared-data manifests, .dvc files and config, OCI layout metadata, pipeline
// locks and reports).
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to name atomically with mode perm.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	return Write(name, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write streams the content produced by fill into name atomically with mode perm. fill writes
// to a buffered writer over the temp file; its error aborts the write and leaves name as it was.
func Write(name string, perm fs.FileMode, fill func(w io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(bw); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", name, err)
	}
	return commit(tmp, name, perm)
}

// commit gives the temp file tmp its mode, fsyncs and closes it, and renames it over name.
// The caller removes tmp when commit fails.
func commit(tmp *os.File, name string, perm fs.FileMode) error {
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	// Make the rename itself durable; a directory that cannot be opened or synced (some
	// file systems refuse) does not undo a completed rename.
	if d, derr := os.Open(filepath.Dir(name)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Pending is a temp file reserved beside a target, for writers that can only write to a path
// (gotch saves weights by file name): write to Path, then Commit, or Abort on failure.
// Abort after Commit is a no-op, so `defer p.Abort()` cleans up every failed path.
type Pending struct {
	name string // the target
	tmp  string // the reserved temp file; "" once committed or aborted
}

// Reserve creates an empty, uniquely named temp file in name's directory and returns it as a
// Pending write of name.
func Reserve(name string) (*Pending, error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("atomicfile: %w", err)
	}
	return &Pending{name: name, tmp: tmp.Name()}, nil
}

// Path is the temp file to write; the writer may replace it (create/truncate) by name.
func (p *Pending) Path() string { return p.tmp }

// Commit fsyncs the temp file, gives it mode perm and renames it over the target. On error the
// temp file is removed and the target is untouched.
func (p *Pending) Commit(perm fs.FileMode) (err error) {
	if p.tmp == "" {
		return fmt.Errorf("atomicfile: %s: already committed or aborted", p.name)
	}
	tmpName := p.tmp
	p.tmp = ""
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()
	// Reopened for writing: fsync needs a descriptor, and some writers replace the file by name.
	f, err := os.OpenFile(tmpName, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := commit(f, p.name, perm); err != nil {
		f.Close()
		return err
	}
	return nil
}

// Abort removes the temp file; after Commit it does nothing.
func (p *Pending) Abort() {
	if p.tmp != "" {
		os.Remove(p.tmp)
		p.tmp = ""
	}
}
