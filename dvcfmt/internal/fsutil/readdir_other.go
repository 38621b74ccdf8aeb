//go:build !linux

package fsutil

import (
	"io/fs"
	"os"
)

// DirEntry is a directory entry; Info is set for regular files (their lstat information).
type DirEntry struct {
	Name string
	Type fs.FileMode
	Info fs.FileInfo
}

// ReadDirStat lists dir like os.ReadDir and lstats every regular file.
func ReadDirStat(dir string) ([]DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(ents))
	for i, e := range ents {
		out[i] = DirEntry{Name: e.Name(), Type: e.Type()}
		if e.Type().IsRegular() {
			if out[i].Info, err = e.Info(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
