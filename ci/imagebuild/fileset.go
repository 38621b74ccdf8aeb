package imagebuild

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Mode bits of a tar entry beyond the permission bits.
const (
	modeSticky = 0o1000
	modeSetgid = 0o2000
	modeSetuid = 0o4000
)

// Limits on what a FileSet accepts, so a mistaken source directory cannot produce a runaway layer.
const (
	maxEntries  = 200_000
	maxDataSize = 64 << 20 // inline data entries
)

// ErrInvalidPath is returned for an in-image path that is absolute after cleaning to "/",
// climbs out of the root, or is empty.
var ErrInvalidPath = errors.New("invalid in-image path")

// Entry is one file, directory or symlink of a layer. Path is slash-separated and relative to
// the image root ("usr/lib/x.so").
type Entry struct {
	Path     string
	Type     byte  // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64 // permission bits plus setuid/setgid/sticky
	UID, GID int
	Linkname string // symlink target
	Source   string // host file for a regular file (read when the tar is written)
	Data     []byte // inline content for a regular file without Source
	implied  bool   // a parent directory nobody added explicitly
}

// FileSet is the content of one layer: entries keyed by in-image path. It is written as a tar
// with entries sorted by path, every missing parent directory added (0755, root), and fixed
// owners and mtimes. A FileSet is not safe for concurrent mutation.
type FileSet struct {
	entries map[string]*Entry
}

// NewFileSet returns an empty FileSet.
func NewFileSet() *FileSet { return &FileSet{entries: map[string]*Entry{}} }

// Len returns the number of explicit and implied entries.
func (s *FileSet) Len() int { return len(s.entries) }

// Lookup returns the entry at p (an in-image path, with or without a leading slash).
func (s *FileSet) Lookup(p string) (Entry, bool) {
	clean, err := cleanPath(p)
	if err != nil {
		return Entry{}, false
	}
	e, ok := s.entries[clean]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

func cleanPath(p string) (string, error) {
	slashed := filepath.ToSlash(p)
	if strings.ContainsRune(slashed, 0) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPath, p)
	}
	for _, part := range strings.Split(slashed, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q", ErrInvalidPath, p)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+slashed), "/")
	if c == "" {
		return "", fmt.Errorf("%w: %q", ErrInvalidPath, p)
	}
	return c, nil
}

func (s *FileSet) add(e *Entry) error {
	clean, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = clean
	if old, ok := s.entries[clean]; ok {
		switch {
		case old.implied && e.Type == tar.TypeDir:
			// an explicit directory replaces an implied one
		case old.Type == tar.TypeDir && e.Type == tar.TypeDir && old.Mode == e.Mode && old.UID == e.UID && old.GID == e.GID:
			return nil
		case old.Type == tar.TypeSymlink && e.Type == tar.TypeSymlink && old.Linkname == e.Linkname:
			return nil
		default:
			return fmt.Errorf("imagebuild: %s added twice", clean)
		}
	}
	if len(s.entries) >= maxEntries {
		return fmt.Errorf("imagebuild: more than %d entries in one layer", maxEntries)
	}
	// Parents must be directories; add implied ones.
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		if p, ok := s.entries[dir]; ok {
			if p.Type != tar.TypeDir {
				return fmt.Errorf("imagebuild: %s needs %s to be a directory", clean, dir)
			}
			continue
		}
		s.entries[dir] = &Entry{Path: dir, Type: tar.TypeDir, Mode: 0o755, implied: true}
	}
	s.entries[clean] = e
	return nil
}

// addDir adds a directory with the given mode and owner. Adding the same directory twice with
// the same attributes is allowed; an explicit directory replaces an implied parent.
func (s *FileSet) addDir(p string, mode int64, uid, gid int) error {
	return s.add(&Entry{Path: p, Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid})
}

// AddFile adds the host file src at p, owned by root. Its content and size are read when the tar
// is written; a file that changes size meanwhile makes the write fail.
func (s *FileSet) AddFile(src, p string, mode int64) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("imagebuild: %s is not a regular file", src)
	}
	return s.add(&Entry{Path: p, Type: tar.TypeReg, Mode: mode, Source: src})
}

// addData adds an in-memory file at p, owned by root.
func (s *FileSet) addData(p string, data []byte, mode int64) error {
	if len(data) > maxDataSize {
		return fmt.Errorf("imagebuild: inline file %s is larger than %d bytes", p, maxDataSize)
	}
	return s.add(&Entry{Path: p, Type: tar.TypeReg, Mode: mode, Data: data})
}

// addSymlink adds a symbolic link at p pointing to target (kept verbatim).
func (s *FileSet) addSymlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("imagebuild: empty symlink target for %s", p)
	}
	return s.add(&Entry{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target})
}

// addTree adds the directory tree srcDir at dst. Regular files keep only their executable bit
// (0755 or 0644), directories get 0755, and symlinks are followed, so the layer does not depend
// on the umask or on links out of the tree. Other file types are an error.
func (s *FileSet) addTree(srcDir, dst string) error {
	if err := s.addDir(dst, 0o755, 0, 0); err != nil {
		return err
	}
	return filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("imagebuild: walk %s: %w", srcDir, err)
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil || rel == "." {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		fi, err := os.Stat(p) // follow symlinks
		if err != nil {
			return fmt.Errorf("imagebuild: %w", err)
		}
		switch {
		case fi.IsDir():
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("imagebuild: %s is a symlink to a directory; not followed", p)
			}
			return s.addDir(target, 0o755, 0, 0)
		case fi.Mode().IsRegular():
			mode := int64(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return s.AddFile(p, target, mode)
		default:
			return fmt.Errorf("imagebuild: %s: unsupported file type %s", p, fi.Mode().Type())
		}
	})
}

// Merge adds every explicit entry of other to s.
func (s *FileSet) Merge(other *FileSet) error {
	for _, e := range other.sortedEntries() {
		if e.implied {
			continue
		}
		c := e
		if err := s.add(&c); err != nil {
			return err
		}
	}
	return nil
}

// sortedEntries returns every entry sorted by path (parents before children).
func (s *FileSet) sortedEntries() []Entry {
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// WriteTar writes the set as an uncompressed tar stream with every mtime set to mtime
// (truncated to seconds), numeric owners only and no access or change times.
func (s *FileSet) WriteTar(w io.Writer, mtime time.Time) error {
	mtime = mtime.UTC().Truncate(time.Second)
	tw := tar.NewWriter(w)
	buf := make([]byte, 1<<20)
	for _, e := range s.sortedEntries() {
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     e.Path,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		var src *os.File
		switch e.Type {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeSymlink:
			hdr.Linkname = e.Linkname
		case tar.TypeReg:
			if e.Source != "" {
				f, err := os.Open(e.Source)
				if err != nil {
					return fmt.Errorf("imagebuild: %w", err)
				}
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return fmt.Errorf("imagebuild: %w", err)
				}
				hdr.Size = fi.Size()
				src = f
			} else {
				hdr.Size = int64(len(e.Data))
			}
		default:
			return fmt.Errorf("imagebuild: %s: unsupported entry type %q", e.Path, e.Type)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			if src != nil {
				src.Close()
			}
			return fmt.Errorf("imagebuild: tar header %s: %w", e.Path, err)
		}
		if e.Type != tar.TypeReg {
			continue
		}
		var err error
		if src != nil {
			var n int64
			n, err = io.CopyBuffer(tw, io.LimitReader(src, hdr.Size), buf)
			src.Close()
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("%s shrank while being read", e.Source)
			}
		} else {
			_, err = tw.Write(e.Data)
		}
		if err != nil {
			return fmt.Errorf("imagebuild: tar %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("imagebuild: tar close: %w", err)
	}
	return nil
}
