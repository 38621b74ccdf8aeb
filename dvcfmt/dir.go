package dvcfmt

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// DirSuffix ends the object id of every directory (tree) object.
const DirSuffix = ".dir"

// MaxDirBytes bounds the size of a .dir object this package parses (256 MiB, about
// three million entries).
const MaxDirBytes = 256 << 20

// DirEntry is one file of a directory object: its md5 and its slash-separated path
// relative to the tracked directory.
type DirEntry struct {
	MD5     string
	RelPath string
}

// ErrInvalidDir is wrapped by every error that ParseDir returns for malformed input.
var ErrInvalidDir = errors.New("invalid .dir object")

// EncodeDir returns the exact bytes dvc writes for a directory object: a JSON list sorted by
// relpath, as Python's json.dumps(list, sort_keys=True) prints it (", " and ": " separators,
// ensure_ascii escapes, no trailing newline). entries is not modified.
func EncodeDir(entries []DirEntry) []byte {
	sorted := append([]DirEntry(nil), entries...)
	sortDir(sorted)
	var b bytes.Buffer
	b.Grow(len(sorted) * 80)
	b.WriteByte('[')
	for i, e := range sorted {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`{"md5": `)
		writePyString(&b, e.MD5)
		b.WriteString(`, "relpath": `)
		writePyString(&b, e.RelPath)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes()
}

// sortDir sorts entries by relpath in code-point order, the order dvc writes them.
func sortDir(entries []DirEntry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].RelPath < entries[j].RelPath })
}

// DirOID returns the object id of a directory object's bytes: md5 hex + ".dir".
func DirOID(encoded []byte) string {
	sum := md5.Sum(encoded)
	return hex.EncodeToString(sum[:]) + DirSuffix
}

// IsDirOID reports whether oid names a directory object.
func IsDirOID(oid string) bool { return strings.HasSuffix(oid, DirSuffix) }

// ValidOID reports whether oid is 32 lowercase hex digits, optionally followed by ".dir".
func ValidOID(oid string) bool {
	oid = strings.TrimSuffix(oid, DirSuffix)
	if len(oid) != 32 {
		return false
	}
	for i := 0; i < len(oid); i++ {
		c := oid[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseDir parses a directory object. It accepts any JSON list of objects carrying "md5" and
// "relpath" (other keys are ignored, as older writers added meta), and rejects entries whose
// md5 is not a file oid or whose relpath is empty, absolute, contains "." or ".." segments or
// a NUL byte, or repeats; the result is sorted by relpath.
func ParseDir(data []byte) ([]DirEntry, error) {
	if len(data) > MaxDirBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidDir, len(data), MaxDirBytes)
	}
	var raw []struct {
		MD5     *string `json:"md5"`
		RelPath *string `json:"relpath"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDir, err)
	}
	out := make([]DirEntry, 0, len(raw))
	for i, r := range raw {
		if r.MD5 == nil || r.RelPath == nil {
			return nil, fmt.Errorf("%w: entry %d lacks md5 or relpath", ErrInvalidDir, i)
		}
		md := strings.ToLower(*r.MD5)
		if !ValidOID(md) || IsDirOID(md) {
			return nil, fmt.Errorf("%w: entry %d: bad md5 %q", ErrInvalidDir, i, *r.MD5)
		}
		if err := checkRelPath(*r.RelPath); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidDir, i, err)
		}
		out = append(out, DirEntry{MD5: md, RelPath: *r.RelPath})
	}
	sortDir(out)
	for i := 1; i < len(out); i++ {
		if out[i].RelPath == out[i-1].RelPath {
			return nil, fmt.Errorf("%w: duplicate relpath %q", ErrInvalidDir, out[i].RelPath)
		}
	}
	return out, nil
}

// checkRelPath rejects slash-separated relative paths that could leave their root: empty,
// absolute, with empty, "." or ".." segments, or with NUL bytes or invalid UTF-8.
func checkRelPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
		return fmt.Errorf("path %q has invalid bytes", p)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q has an empty, . or .. segment", p)
		}
	}
	return nil
}

// writePyString writes s as Python's json.dumps(ensure_ascii=True) does.
func writePyString(b *bytes.Buffer, s string) {
	const hexd = "0123456789abcdef"
	u := func(r rune) {
		b.WriteString(`\u`)
		b.WriteByte(hexd[r>>12&0xf])
		b.WriteByte(hexd[r>>8&0xf])
		b.WriteByte(hexd[r>>4&0xf])
		b.WriteByte(hexd[r&0xf])
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteByte(byte(r))
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			u(r1)
			u(r2)
		default:
			u(r)
		}
	}
	b.WriteByte('"')
}
