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
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
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
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
