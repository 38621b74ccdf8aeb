package dvcfmt

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// YAML output as dvc writes it: ruamel.yaml's round-trip dumper with default_flow_style=False
// (dvc/utils/serialize/_yaml.py). Block style, two-space mapping indent, sequences not indented
// under their key, strings plain when YAML 1.2 reads them back as the same string (else single-,
// else double-quoted, as ruamel chooses), long scalars folded at ruamel's best_width of 80
// columns, floats as Python's repr. EncodeYAML reproduces those bytes for the value types a
// dvc.lock or .dvc file holds, so a file catdog writes is byte for byte what dvc would write.

// YAMLMap is an ordered mapping for EncodeYAML.
type YAMLMap []YAMLItem

// YAMLItem is one key and value of a YAMLMap. Value is nil, bool, int, int64, float64, string,
// YAMLMap or []any.
type YAMLItem struct {
	Key   string
	Value any
}

// Get returns the value of key and whether it is present.
func (m YAMLMap) Get(key string) (any, bool) {
	for _, it := range m {
		if it.Key == key {
			return it.Value, true
		}
	}
	return nil, false
}

const yamlBestWidth = 80

// EncodeYAML returns m as the block YAML document ruamel (dvc's dumper) writes for it.
func EncodeYAML(m YAMLMap) ([]byte, error) {
	e := &yamlEmitter{whitespace: true, indention: true}
	if len(m) == 0 {
		return []byte("{}\n"), nil
	}
	if err := e.mapping(m, 0); err != nil {
		return nil, err
	}
	e.b.WriteByte('\n')
	return e.b.Bytes(), nil
}

type yamlEmitter struct {
	b          bytes.Buffer
	col        int
	whitespace bool // the last thing written was whitespace
	indention  bool // only indentation was written on this line
}

func (e *yamlEmitter) write(s string) {
	e.b.WriteString(s)
	e.col += utf8.RuneCountInString(s)
}

func (e *yamlEmitter) lineBreak() {
	e.b.WriteByte('\n')
	e.col, e.whitespace, e.indention = 0, true, true
}

// writeIndent is ruamel's Emitter.write_indent.
func (e *yamlEmitter) writeIndent(indent int) {
	if !e.indention || e.col > indent || (e.col == indent && !e.whitespace) {
		e.lineBreak()
	}
	if e.col < indent {
		e.whitespace = true
		e.write(strings.Repeat(" ", indent-e.col))
	}
}

// indicator is ruamel's Emitter.write_indicator.
func (e *yamlEmitter) indicator(s string, needWhitespace, whitespace, indention bool) {
	if !e.whitespace && needWhitespace {
		s = " " + s
	}
	e.whitespace = whitespace
	e.indention = e.indention && indention
	e.write(s)
}

// mapping writes a block mapping whose keys sit at column indent.
func (e *yamlEmitter) mapping(m YAMLMap, indent int) error {
	for _, it := range m {
		e.writeIndent(indent)
		if err := e.scalar(it.Key, indent+2, true); err != nil {
			return err
		}
		e.indicator(":", false, false, false)
		if err := e.value(it.Value, indent, false); err != nil {
			return fmt.Errorf("%s: %w", it.Key, err)
		}
	}
	return nil
}

// sequence writes a block sequence whose dashes sit at column indent.
func (e *yamlEmitter) sequence(items []any, indent int) error {
	for i, v := range items {
		e.writeIndent(indent)
		e.indicator("-", true, false, true)
		if err := e.value(v, indent, true); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// value writes a mapping value (inSeq false; parent is the mapping's indent) or a sequence
// item (inSeq true; parent is the dashes' column).
func (e *yamlEmitter) value(v any, parent int, inSeq bool) error {
	switch x := v.(type) {
	case YAMLMap:
		if len(x) == 0 {
			e.indicator("{}", true, false, false)
			return nil
		}
		return e.mapping(x, parent+2)
	case []any:
		if len(x) == 0 {
			e.indicator("[]", true, false, false)
			return nil
		}
		if inSeq { // a sequence in a sequence is indented; under a mapping key it is not
			return e.sequence(x, parent+2)
		}
		return e.sequence(x, parent)
	}
	if inSeq {
		e.writeIndent(parent + 2)
	}
	switch x := v.(type) {
	case nil:
		return nil // ruamel writes nothing for null
	case bool:
		e.plain(strconv.FormatBool(x), parent+2)
	case int:
		e.plain(strconv.Itoa(x), parent+2)
	case int64:
		e.plain(strconv.FormatInt(x, 10), parent+2)
	case float64:
		e.plain(PyFloat(x), parent+2)
	case string:
		return e.scalar(x, parent+2, false)
	default:
		return fmt.Errorf("dvcfmt: cannot encode %T as YAML", v)
	}
	return nil
}

// scalar writes a string in the style ruamel chooses for it.
func (e *yamlEmitter) scalar(s string, indent int, simpleKey bool) error {
	switch yamlStyle(s, simpleKey) {
	case '\'':
		e.singleQuoted([]rune(s), indent, !simpleKey)
	case '"':
		e.doubleQuoted([]rune(s), indent, !simpleKey)
	default:
		if simpleKey {
			if !e.whitespace {
				e.write(" ")
			}
			e.write(s)
			e.whitespace, e.indention = false, false
			return nil
		}
		e.plain(s, indent)
	}
	return nil
}
