package dvcfmt

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxDVCFileBytes bounds the size of a .dvc file this package parses (4 MiB).
const MaxDVCFileBytes = 4 << 20

// HashMD5 is the value of an out's `hash` key in DVC 3 files. An out without it is a legacy
// DVC 2 out (md5-dos2unix, legacy cache layout).
const HashMD5 = "md5"

// ErrInvalidDVCFile is wrapped by every error ParseDVCFile returns for malformed input.
var ErrInvalidDVCFile = errors.New("invalid .dvc file")

// DVCFile is a single-stage .dvc file as `dvc add` writes it.
type DVCFile struct {
	Desc   string // top-level desc (optional)
	WDir   string // top-level wdir (optional)
	Frozen bool
	Outs   []Out
}

// Out is one output of a .dvc file.
type Out struct {
	MD5    string // file md5, or tree oid ending in ".dir"; empty when not yet computed
	Size   int64
	NFiles int64  // directories only
	IsExec bool   // files only
	Hash   string // "md5" for DVC 3 outs; "" for legacy DVC 2 outs
	Path   string // slash-separated, relative to the .dvc file's directory (and wdir)

	// Optional flags and annotations kept through a re-add.
	Desc    string
	Type    string
	Cache   *bool // nil = default (true)
	Persist bool
	Remote  string
	Push    *bool // nil = default (true)
}

// IsDir reports whether the out tracks a directory.
func (o Out) IsDir() bool { return IsDirOID(o.MD5) }

// Legacy reports whether the out was written by DVC 2 (no `hash: md5`).
func (o Out) Legacy() bool { return o.Hash == "" }

// UsesCache reports whether the out's data lives in the cache (cache: false turns that off).
func (o Out) UsesCache() bool { return o.Cache == nil || *o.Cache }

// Pushed reports whether push/pull should transfer the out (push: false turns that off).
func (o Out) Pushed() bool { return o.UsesCache() && (o.Push == nil || *o.Push) }

var (
	topKeys = map[string]bool{"md5": true, "wdir": true, "deps": true, "outs": true, "locked": true,
		"frozen": true, "meta": true, "always_changed": true, "desc": true}
	outKeys = map[string]bool{"md5": true, "etag": true, "checksum": true, "size": true, "nfiles": true,
		"isexec": true, "version_id": true, "path": true, "hash": true, "cloud": true, "files": true,
		"persist": true, "desc": true, "type": true, "labels": true, "meta": true, "cache": true,
		"remote": true, "push": true, "fs_config": true, "metric": true, "plot": true}
)

// ParseDVCFile parses a .dvc file. Keys outside dvc's schema are rejected as dvc rejects
// them; keys that dvc accepts but catdog does not model (etag, cloud, files, labels, ...)
// are ignored. Every out needs a path that stays inside the file's directory.
func ParseDVCFile(data []byte) (*DVCFile, error) {
	if len(data) > MaxDVCFileBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidDVCFile, len(data), MaxDVCFileBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDVCFile, err)
	}
	f := &DVCFile{}
	if doc.Kind == 0 { // empty document
		return f, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: top level is not a mapping", ErrInvalidDVCFile)
	}
	err := eachKey(doc.Content[0], func(k string, v *yaml.Node) error {
		if !topKeys[k] {
			return fmt.Errorf("extra key %q not allowed", k)
		}
		var err error
		switch k {
		case "desc":
			f.Desc, err = scalarString(v)
		case "wdir":
			f.WDir, err = scalarString(v)
		case "frozen":
			f.Frozen, err = scalarBool(v)
		case "outs":
			if v.Kind != yaml.SequenceNode {
				return errors.New("outs is not a list")
			}
			for i, item := range v.Content {
				o, err := parseOut(item)
				if err != nil {
					return fmt.Errorf("outs[%d]: %w", i, err)
				}
				f.Outs = append(f.Outs, o)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDVCFile, err)
	}
	return f, nil
}

func parseOut(n *yaml.Node) (Out, error) {
	var o Out
	if n.Kind == yaml.ScalarNode { // dvc accepts a bare path string
		p, err := scalarString(n)
		if err != nil {
			return o, err
		}
		o.Path = p
		return o, checkOutPath(p)
	}
	if n.Kind != yaml.MappingNode {
		return o, errors.New("not a mapping")
	}
	err := eachKey(n, func(k string, v *yaml.Node) error {
		if !outKeys[k] {
			return fmt.Errorf("extra key %q not allowed", k)
		}
		var err error
		switch k {
		case "md5":
			o.MD5, err = scalarString(v)
			o.MD5 = strings.ToLower(o.MD5)
			if err == nil && !ValidOID(o.MD5) {
				err = fmt.Errorf("md5 %q is not an md5 hex digest", o.MD5)
			}
		case "size":
			o.Size, err = scalarInt(v)
		case "nfiles":
			o.NFiles, err = scalarInt(v)
		case "isexec":
			o.IsExec, err = scalarBool(v)
		case "hash":
			o.Hash, err = scalarString(v)
		case "path":
			o.Path, err = scalarString(v)
		case "desc":
			o.Desc, err = scalarString(v)
		case "type":
			o.Type, err = scalarString(v)
		case "remote":
			o.Remote, err = scalarString(v)
		case "persist":
			o.Persist, err = scalarBool(v)
		case "cache":
			var b bool
			b, err = scalarBool(v)
			o.Cache = &b
		case "push":
			var b bool
			b, err = scalarBool(v)
			o.Push = &b
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	if o.Path == "" {
		return o, errors.New("required key path missing")
	}
	if o.Hash != "" && o.Hash != HashMD5 && o.Hash != "md5-dos2unix" {
		return o, fmt.Errorf("unsupported hash %q", o.Hash)
	}
	if o.Hash == "md5-dos2unix" {
		o.Hash = ""
	}
	if o.Size < 0 || o.NFiles < 0 {
		return o, errors.New("negative size or nfiles")
	}
	return o, checkOutPath(o.Path)
}

// checkOutPath accepts paths relative to the .dvc file that stay below its directory.
func checkOutPath(p string) error {
	if err := checkRelPath(strings.TrimSuffix(p, "/")); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	return nil
}

func eachKey(m *yaml.Node, fn func(string, *yaml.Node) error) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, v := m.Content[i], m.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return errors.New("non-scalar key")
		}
		if seen[kn.Value] {
			return fmt.Errorf("duplicate key %q", kn.Value)
		}
		seen[kn.Value] = true
		if err := fn(kn.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func scalarString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", errors.New("not a string")
	}
	return n.Value, nil
}

func scalarInt(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, errors.New("not an integer")
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, fmt.Errorf("not an integer: %q", n.Value)
	}
	return v, nil
}

func scalarBool(n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, errors.New("not a boolean")
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, fmt.Errorf("not a boolean: %q", n.Value)
	}
	return v, nil
}

// Encode returns the .dvc file text as dvc writes it (ruamel block style, keys in dvc's order:
// md5, size, nfiles|isexec, hash, path, then flags).
func (f *DVCFile) Encode() []byte {
	var b bytes.Buffer
	if f.Desc != "" {
		fmt.Fprintf(&b, "desc: %s\n", yamlScalar(f.Desc))
	}
	if f.WDir != "" {
		fmt.Fprintf(&b, "wdir: %s\n", yamlScalar(f.WDir))
	}
	if f.Frozen {
		b.WriteString("frozen: true\n")
	}
	if len(f.Outs) > 0 {
		b.WriteString("outs:\n")
	}
	for _, o := range f.Outs {
		first := true
		kv := func(k, v string) {
			if first {
				b.WriteString("- ")
				first = false
			} else {
				b.WriteString("  ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
		if o.MD5 != "" {
			kv("md5", o.MD5)
			kv("size", strconv.FormatInt(o.Size, 10))
			if o.IsDir() {
				kv("nfiles", strconv.FormatInt(o.NFiles, 10))
			} else if o.IsExec {
				kv("isexec", "true")
			}
		}
		if o.Hash != "" {
			kv("hash", yamlScalar(o.Hash))
		}
		kv("path", yamlScalar(o.Path))
		if o.Desc != "" {
			kv("desc", yamlScalar(o.Desc))
		}
		if o.Type != "" {
			kv("type", yamlScalar(o.Type))
		}
		if o.Cache != nil && !*o.Cache {
			kv("cache", "false")
		}
		if o.Persist {
			kv("persist", "true")
		}
		if o.Remote != "" {
			kv("remote", yamlScalar(o.Remote))
		}
		if o.Push != nil && !*o.Push {
			kv("push", "false")
		}
	}
	return b.Bytes()
}

// yamlScalar renders s plain when YAML reads it back as the same string, else single-quoted
// (ruamel's choice for printable text), else double-quoted.
func yamlScalar(s string) string {
	if plainSafe(s) {
		return s
	}
	printable := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == 0xfeff {
			printable = false
			break
		}
	}
	if printable {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	out, _ := yaml.Marshal(yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: s})
	return strings.TrimSuffix(string(out), "\n")
}

func plainSafe(s string) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	switch s[0] {
	case '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '[', ']', '{', '}', ',', '?', ':':
		return false
	case '-':
		if len(s) == 1 || s[1] == ' ' {
			return false
		}
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == 0xfeff || r == 0x85 {
			return false
		}
	}
	// YAML 1.1/1.2 would resolve it to something else (number, bool, null, date...).
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return false
	}
	str, ok := v.(string)
	if !ok || str != s {
		return false
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		return false // YAML 1.1 booleans ruamel still quotes
	}
	return true
}
