package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DirEntry is a directory entry; Info is set for regular files (their lstat information).
type DirEntry struct {
	Name string
	Type fs.FileMode // the type bits, as fs.DirEntry.Type
	Info fs.FileInfo // regular files only; Sys() is a *unix.Stat_t
}

// ReadDirStat lists dir like os.ReadDir (sorted by name) and lstats every regular file
// relative to the open directory: the kernel resolves one name per file instead of the whole
// path, as os.DirEntry.Info does.
func ReadDirStat(dir string) ([]DirEntry, error) {
	f, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	out := make([]DirEntry, len(ents))
	for i, e := range ents {
		out[i] = DirEntry{Name: e.Name(), Type: e.Type()}
		if !e.Type().IsRegular() {
			continue
		}
		info := &statInfo{name: e.Name()}
		if err := fstatat(fd, e.Name(), &info.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, &os.PathError{Op: "lstat", Path: dir + "/" + e.Name(), Err: err}
		}
		out[i].Info = info
	}
	sortEntries(out)
	return out, nil
}

func fstatat(fd int, name string, st *unix.Stat_t, flags int) error {
	for {
		err := unix.Fstatat(fd, name, st, flags)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// statInfo is an fs.FileInfo from a unix.Stat_t (the same fields os.Lstat reports).
type statInfo struct {
	name string
	st   unix.Stat_t
}

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }
func (s *statInfo) Mode() fs.FileMode  { return FileMode(uint32(s.st.Mode)) }

// FileMode converts a stat st_mode to an fs.FileMode, as package os does.
func FileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func sortEntries(es []DirEntry) {
	slices.SortFunc(es, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
}
