package imagebuild

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// defaultLibraryDirs are the dynamic loader's default search directories on Debian amd64.
func defaultLibraryDirs() []string {
	return []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib", "lib64", "usr/lib64"}
}

// MissingLibraryError reports ELF files of an image whose dynamic loader or shared libraries
// (DT_NEEDED) the image does not contain: the container would fail at exec time.
type MissingLibraryError struct {
	Missing map[string][]string // in-image ELF path -> missing library names
}

var _ error = (*MissingLibraryError)(nil)

func (e *MissingLibraryError) Error() string {
	files := make([]string, 0, len(e.Missing))
	for f := range e.Missing {
		files = append(files, f)
	}
	sort.Strings(files)
	parts := make([]string, 0, len(files))
	for _, f := range files {
		parts = append(parts, fmt.Sprintf("/%s needs %s", f, strings.Join(e.Missing[f], ", ")))
	}
	return "imagebuild: missing shared libraries: " + strings.Join(parts, "; ")
}

// view is the merged file system of several layers' FileSets.
type view map[string]Entry

func newView(sets []*FileSet) view {
	v := view{}
	for _, s := range sets {
		for _, e := range s.sortedEntries() {
			v[e.Path] = e
		}
	}
	return v
}

// resolve follows symlinks (in every path component) inside the view.
func (v view) resolve(p string) (string, bool) {
	for hops := 0; hops < 40; hops++ {
		parts := strings.Split(p, "/")
		cur := ""
		restarted := false
		for i, part := range parts {
			next := path.Join(cur, part)
			e, ok := v[next]
			if !ok {
				return "", false
			}
			if e.Type == tar.TypeSymlink {
				target := e.Linkname
				if strings.HasPrefix(target, "/") {
					target = strings.TrimPrefix(path.Clean(target), "/")
				} else {
					target = path.Join(cur, target)
				}
				p = path.Join(append([]string{target}, parts[i+1:]...)...)
				restarted = true
				break
			}
			cur = next
		}
		if !restarted {
			return p, true
		}
	}
	return "", false
}

// CheckLinkage verifies that every ELF file in roots (in-image paths) finds its program
// interpreter and, transitively, every DT_NEEDED library in libDirs followed by the default
// directories, within the merged sets. RPATH/RUNPATH entries are ignored on purpose: they point
// at build-machine paths that the image does not have.
//
// Build runs it on every Debian-based image; it stays exported, with NewFileSet and
// FileSet.AddFile, so a caller (and build_test's black-box cases) can check hand-assembled
// sets without building an image.
func CheckLinkage(sets []*FileSet, roots []string, libDirs []string) error {
	v := newView(sets)
	dirs := append(append([]string{}, libDirs...), defaultLibraryDirs()...)
	for i, d := range dirs {
		dirs[i] = strings.Trim(path.Clean("/"+d), "/")
	}
	missing := map[string][]string{}
	seen := map[string]bool{}
	queue := make([]string, 0, len(roots))
	for _, r := range roots {
		queue = append(queue, strings.TrimPrefix(path.Clean("/"+r), "/"))
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		real, ok := v.resolve(p)
		if !ok {
			missing[p] = append(missing[p], "(the file itself)")
			continue
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		e := v[real]
		if e.Type != tar.TypeReg || e.Source == "" {
			continue
		}
		f, err := elf.Open(e.Source)
		if err != nil {
			var fe *elf.FormatError
			if errors.As(err, &fe) {
				continue // not an ELF file
			}
			return fmt.Errorf("imagebuild: read %s: %w", e.Source, err)
		}
		interp := interpreter(f)
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return fmt.Errorf("imagebuild: dynamic section of %s: %w", e.Source, err)
		}
		if interp != "" {
			if _, ok := v.resolve(strings.TrimPrefix(path.Clean(interp), "/")); !ok {
				missing[real] = append(missing[real], interp)
			} else {
				queue = append(queue, strings.TrimPrefix(path.Clean(interp), "/"))
			}
		}
		for _, lib := range needed {
			found := ""
			for _, d := range dirs {
				if _, ok := v.resolve(path.Join(d, lib)); ok {
					found = path.Join(d, lib)
					break
				}
			}
			if found == "" {
				missing[real] = append(missing[real], lib)
				continue
			}
			queue = append(queue, found)
		}
	}
	if len(missing) > 0 {
		return &MissingLibraryError{Missing: missing}
	}
	return nil
}

func interpreter(f *elf.File) string {
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return ""
		}
		return strings.TrimRight(string(b), "\x00")
	}
	return ""
}
