package dvcfmt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// MaxConfigBytes bounds the size of a config file this package parses (1 MiB).
const MaxConfigBytes = 1 << 20

// ErrInvalidConfig is wrapped by every error ParseConfig returns for malformed input.
var ErrInvalidConfig = errors.New("invalid dvc config")

// Config is a `.dvc/config` (or config.local) file: the subset of configobj INI that dvc
// writes. Section names and keys are lower-cased on read, as dvc does.
type Config struct {
	Sections []*Section
	Trailing []string // comment lines after the last value
}

// Section is one `[name]` block. Remotes are named `remote "<name>"`.
type Section struct {
	Name     string
	Comments []string // full-line comments just above the header, kept on rewrite
	Keys     []KeyValue
}

// KeyValue is one `key = value` line. A configobj list value (a,b) reads as "a,b".
type KeyValue struct {
	Key      string
	Value    string
	Comments []string
}

// RemoteSection returns the section name holding remote name's options.
func RemoteSection(name string) string { return `remote "` + name + `"` }

// ParseConfig parses configobj INI text as dvc writes and reads it: `[section]` headers,
// optionally quoted with ' or "; `key = value` lines with optionally quoted values; `#`
// comments; unquoted comma lists. Nested sections and triple-quoted values are rejected.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d byte limit", ErrInvalidConfig, len(data), MaxConfigBytes)
	}
	c := &Config{}
	var cur *Section
	var comments []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxConfigBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case line[0] == '#':
			comments = append(comments, line)
			continue
		case line[0] == '[':
			if strings.HasPrefix(line, "[[") {
				return nil, fmt.Errorf("%w: line %d: nested sections are not supported", ErrInvalidConfig, n)
			}
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("%w: line %d: unterminated section header", ErrInvalidConfig, n)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' {
				return nil, fmt.Errorf("%w: line %d: text after section header", ErrInvalidConfig, n)
			}
			name, err := unquote(strings.TrimSpace(line[1:end]))
			if err != nil || name == "" || bothQuotes(name) || strings.ContainsAny(name, "[]") {
				return nil, fmt.Errorf("%w: line %d: bad section name", ErrInvalidConfig, n)
			}
			name = strings.ToLower(name)
			if c.Section(name) != nil {
				return nil, fmt.Errorf("%w: line %d: duplicate section %q", ErrInvalidConfig, n, name)
			}
			cur = &Section{Name: name, Comments: comments}
			comments = nil
			c.Sections = append(c.Sections, cur)
		default:
			if cur == nil {
				return nil, fmt.Errorf("%w: line %d: value outside any section", ErrInvalidConfig, n)
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 {
				return nil, fmt.Errorf("%w: line %d: expected key = value", ErrInvalidConfig, n)
			}
			key, err := unquote(strings.TrimSpace(line[:eq]))
			if err != nil || key == "" || bothQuotes(key) {
				return nil, fmt.Errorf("%w: line %d: bad key", ErrInvalidConfig, n)
			}
			val, err := parseValue(strings.TrimSpace(line[eq+1:]))
			if err == nil && bothQuotes(val) {
				err = errors.New("values holding both ' and \" need triple quotes, which are not supported")
			}
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidConfig, n, err)
			}
			key = strings.ToLower(key)
			for _, kv := range cur.Keys {
				if kv.Key == key {
					return nil, fmt.Errorf("%w: line %d: duplicate key %q", ErrInvalidConfig, n, key)
				}
			}
			cur.Keys = append(cur.Keys, KeyValue{Key: key, Value: val, Comments: comments})
			comments = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	c.Trailing = comments
	return c, nil
}

// bothQuotes reports text configobj can only write triple-quoted (unsupported here).
func bothQuotes(s string) bool { return strings.Contains(s, "'") && strings.Contains(s, `"`) }

// unquote removes one pair of matching ' or " quotes (configobj has no escapes).
func unquote(s string) (string, error) {
	if len(s) >= 1 && (s[0] == '"' || s[0] == '\'') {
		if len(s) < 2 || s[len(s)-1] != s[0] {
			return "", errors.New("unbalanced quotes")
		}
		inner := s[1 : len(s)-1]
		if strings.IndexByte(inner, s[0]) >= 0 {
			return "", errors.New("quote inside quoted text")
		}
		return inner, nil
	}
	return s, nil
}

// parseValue reads a configobj value: a quoted string, an unquoted string up to a comment, or
// a comma list of those (returned joined with ",").
func parseValue(s string) (string, error) {
	if strings.HasPrefix(s, `"""`) || strings.HasPrefix(s, `'''`) {
		return "", errors.New("triple-quoted values are not supported")
	}
	var items []string
	isList := false
	for {
		s = strings.TrimSpace(s)
		if s == "" || s[0] == '#' {
			break
		}
		var item string
		if s[0] == '"' || s[0] == '\'' {
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return "", errors.New("unterminated quoted value")
			}
			item, s = s[1:end+1], s[end+2:]
		} else {
			end := strings.IndexAny(s, ",#")
			if end < 0 {
				end = len(s)
			}
			item, s = strings.TrimSpace(s[:end]), s[end:]
		}
		items = append(items, item)
		s = strings.TrimSpace(s)
		if s == "" || s[0] == '#' {
			break
		}
		if s[0] != ',' {
			return "", fmt.Errorf("unexpected %q after value", s[0])
		}
		isList = true
		s = s[1:]
	}
	if isList {
		return strings.Join(items, ","), nil
	}
	if len(items) == 0 {
		return "", nil
	}
	return items[0], nil
}

// Encode returns the config as configobj writes it: `[name]` headers (quoted when needed,
// e.g. `['remote "origin"']`), four-space indented `key = value` lines.
func (c *Config) Encode() []byte {
	var b bytes.Buffer
	for _, s := range c.Sections {
		for _, cm := range s.Comments {
			b.WriteString(cm + "\n")
		}
		b.WriteString("[" + quote(s.Name) + "]\n")
		for _, kv := range s.Keys {
			for _, cm := range kv.Comments {
				b.WriteString("    " + cm + "\n")
			}
			b.WriteString("    " + quote(kv.Key) + " = " + quote(kv.Value) + "\n")
		}
	}
	for _, cm := range c.Trailing {
		b.WriteString(cm + "\n")
	}
	return b.Bytes()
}

// quote follows configobj's _quote for single-line strings.
func quote(v string) string {
	if v == "" {
		return `""`
	}
	const wspacePlus = " \r\n\v\t'\""
	if strings.TrimSpace(v) == v && !strings.ContainsRune(wspacePlus, rune(v[0])) && !strings.ContainsRune(wspacePlus, rune(v[len(v)-1])) &&
		!strings.Contains(v, ",") && !strings.Contains(v, "#") {
		return v
	}
	if strings.Contains(v, `"`) {
		return "'" + v + "'"
	}
	return `"` + v + `"`
}

// Section returns the named section (lower-cased name), or nil.
func (c *Config) Section(name string) *Section {
	for _, s := range c.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Get returns section.key.
func (c *Config) Get(section, key string) (string, bool) {
	s := c.Section(strings.ToLower(section))
	if s == nil {
		return "", false
	}
	key = strings.ToLower(key)
	for _, kv := range s.Keys {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Set sets section.key, creating the section at the end when missing.
func (c *Config) Set(section, key, value string) {
	section, key = strings.ToLower(section), strings.ToLower(key)
	s := c.Section(section)
	if s == nil {
		s = &Section{Name: section}
		if section == "core" { // dvc's schema order puts core first
			c.Sections = append([]*Section{s}, c.Sections...)
		} else {
			c.Sections = append(c.Sections, s)
		}
	}
	for i := range s.Keys {
		if s.Keys[i].Key == key {
			s.Keys[i].Value = value
			return
		}
	}
	s.Keys = append(s.Keys, KeyValue{Key: key, Value: value})
}

// Unset removes section.key, and the section when it becomes empty.
func (c *Config) Unset(section, key string) {
	section, key = strings.ToLower(section), strings.ToLower(key)
	s := c.Section(section)
	if s == nil {
		return
	}
	keys := s.Keys[:0]
	for _, kv := range s.Keys {
		if kv.Key != key {
			keys = append(keys, kv)
		}
	}
	s.Keys = keys
	if len(s.Keys) == 0 {
		secs := c.Sections[:0]
		for _, x := range c.Sections {
			if x != s {
				secs = append(secs, x)
			}
		}
		c.Sections = secs
	}
}

// Remotes returns the names of the configured remotes in file order.
func (c *Config) Remotes() []string {
	var names []string
	for _, s := range c.Sections {
		if name, ok := strings.CutPrefix(s.Name, `remote "`); ok && strings.HasSuffix(name, `"`) {
			names = append(names, strings.TrimSuffix(name, `"`))
		}
	}
	return names
}

// Merge returns a config where later levels override earlier ones key by key (dvc merges
// system, global, repo and local levels this way). Inputs may be nil.
func Merge(levels ...*Config) *Config {
	out := &Config{}
	for _, l := range levels {
		if l == nil {
			continue
		}
		for _, s := range l.Sections {
			for _, kv := range s.Keys {
				out.Set(s.Name, kv.Key, kv.Value)
			}
		}
	}
	return out
}
