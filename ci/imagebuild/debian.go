package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Non-root user of the image, as in distroless images.
const (
	NonRootUID  = 65532
	NonRootName = "nonroot"
	NonRootHome = "/home/nonroot"
)

// defaultBasePackages returns the Debian packages whose files make up the offline base layer:
// what a cgo binary linked against libtorch needs at run time (glibc, libgcc, libstdc++,
// libgomp) plus CA certificates and time zone data — the package set of distroless "cc".
func defaultBasePackages() []string {
	return []string{"libc6", "libgcc-s1", "libstdc++6", "libgomp1", "ca-certificates", "tzdata"}
}

// excludedPrefixes are package files a server never reads.
func excludedPrefixes() []string {
	return []string{
		"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/",
		"usr/share/bug/", "usr/share/gdb/", "usr/share/gcc/", "usr/share/locale/",
	}
}

// PackageLister lists the absolute paths of the files an installed package owns.
type PackageLister func(ctx context.Context, pkg string) ([]string, error)

// dpkgLister lists files with `dpkg -L`.
func dpkgLister(ctx context.Context, pkg string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dpkg", "-L", pkg)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: dpkg -L %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "/") {
			paths = append(paths, line)
		}
	}
	return paths, sc.Err()
}

// DebianOptions configure DebianBase.
type DebianOptions struct {
	// Packages to take files from. The default is defaultBasePackages().
	Packages []string
	// Lister lists a package's files. The default is dpkgLister.
	Lister PackageLister
}

// DebianBase assembles a base layer from the build machine's installed Debian packages: every
// file the packages own (documentation left out), placed at its canonical path so that the
// merged-/usr symlinks (/lib -> usr/lib, ...) are reproduced, plus the generated CA bundle
// /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with root and the non-root
// user 65532, /tmp (1777), /root and /home/nonroot.
func DebianBase(ctx context.Context, opts DebianOptions) (*FileSet, error) {
	if len(opts.Packages) == 0 {
		opts.Packages = defaultBasePackages()
	}
	if opts.Lister == nil {
		opts.Lister = dpkgLister
	}
	set := NewFileSet()
	for _, pkg := range opts.Packages {
		paths, err := opts.Lister(ctx, pkg)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			if err := addHostPath(set, p); err != nil {
				return nil, fmt.Errorf("imagebuild: package %s: %w", pkg, err)
			}
		}
		if pkg == "ca-certificates" {
			const bundle = "/etc/ssl/certs/ca-certificates.crt"
			if err := set.AddFile(bundle, bundle, 0o644); err != nil {
				return nil, fmt.Errorf("imagebuild: CA bundle (run update-ca-certificates): %w", err)
			}
		}
	}
	// merged-/usr top-level links, as on the build machine
	for _, top := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink("/" + top); err == nil {
			if err := set.addSymlink(top, target); err != nil {
				return nil, err
			}
		}
	}
	if err := addUsers(set); err != nil {
		return nil, err
	}
	return set, nil
}

func excluded(p string) bool {
	for _, pre := range excludedPrefixes() {
		if strings.HasPrefix(p+"/", pre) {
			return true
		}
	}
	return false
}

// addHostPath adds one dpkg-listed path at its canonical location.
func addHostPath(set *FileSet, p string) error {
	if p == "/." || p == "/" {
		return nil
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // listed but removed (e.g. a diverted or purged conffile)
		}
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return err
	}
	canon := strings.TrimPrefix(path.Join(filepath.ToSlash(dir), filepath.Base(p)), "/")
	if excluded(canon) {
		return nil
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		return set.addSymlink(canon, target)
	case fi.IsDir():
		return set.addDir(canon, int64(fi.Mode().Perm()), 0, 0)
	case fi.Mode().IsRegular():
		return set.AddFile(p, canon, int64(fi.Mode().Perm()))
	default:
		return nil // device nodes and fifos never appear in these packages
	}
}

func addUsers(set *FileSet) error {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		fmt.Sprintf("%s:x:%d:%d:%s:%s:/sbin/nologin\n", NonRootName, NonRootUID, NonRootUID, NonRootName, NonRootHome)
	group := "root:x:0:\nnobody:x:65534:\n" + fmt.Sprintf("%s:x:%d:\n", NonRootName, NonRootUID)
	steps := []error{
		set.addDir("etc", 0o755, 0, 0),
		set.addData("etc/passwd", []byte(passwd), 0o644),
		set.addData("etc/group", []byte(group), 0o644),
		set.addData("etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nhosts: files dns\n"), 0o644),
		set.addDir("tmp", 0o777|modeSticky, 0, 0),
		set.addDir("root", 0o700, 0, 0),
		set.addDir("home", 0o755, 0, 0),
		set.addDir(NonRootHome, 0o700, NonRootUID, NonRootUID),
	}
	for _, err := range steps {
		if err != nil {
			return err
		}
	}
	return nil
}
