package dvcfmt

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
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

// plain is ruamel's Emitter.write_plain for text without line breaks.
func (e *yamlEmitter) plain(s string, indent int) {
	text := []rune(s)
	if len(text) == 0 {
		return
	}
	if !e.whitespace {
		e.write(" ")
	}
	e.whitespace, e.indention = false, false
	spaces := false
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		if spaces {
			if ch != ' ' {
				if start+1 == end && e.col >= yamlBestWidth {
					e.writeIndent(indent)
					e.whitespace, e.indention = false, false
				} else {
					e.write(string(text[start:end]))
				}
				start = end
			}
		} else if ch == -1 || ch == ' ' {
			data := text[start:end]
			if len(data)+e.col > yamlBestWidth && e.col > indent {
				e.writeIndent(indent) // words longer than the line get a line of their own
			}
			e.write(string(data))
			start = end
		}
		if ch != -1 {
			spaces = ch == ' '
		}
	}
}

// singleQuoted is ruamel's Emitter.write_single_quoted for text without line breaks.
func (e *yamlEmitter) singleQuoted(text []rune, indent int, split bool) {
	e.indicator("'", true, false, false)
	spaces := false
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		if spaces {
			if ch != ' ' {
				if start+1 == end && e.col > yamlBestWidth && split && start != 0 && end != len(text) {
					e.writeIndent(indent)
				} else {
					e.write(string(text[start:end]))
				}
				start = end
			}
		} else if ch == -1 || ch == ' ' || ch == '\'' {
			if start < end {
				e.write(string(text[start:end]))
				start = end
			}
		}
		if ch == '\'' {
			e.write("''")
			start = end + 1
		}
		if ch != -1 {
			spaces = ch == ' '
		}
	}
	e.indicator("'", false, false, false)
}

var yamlEscapes = map[rune]string{
	0: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r", 0x1B: "e",
	'"': "\"", '\\': "\\", 0x85: "N", 0xA0: "_", 0x2028: "L", 0x2029: "P",
}

func yamlPrintable(ch rune) bool {
	return (ch >= 0x20 && ch <= 0x7E) || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD) || (ch >= 0x10000 && ch <= 0x10FFFF)
}

func indexRune(text []rune, r rune, from, to int) int {
	for i := from; i < to && i < len(text); i++ {
		if text[i] == r {
			return i
		}
	}
	return -1
}

func containsQuote(text []rune) bool {
	for _, r := range text {
		if r == '"' || r == '\'' {
			return true
		}
	}
	return false
}

// doubleQuoted is ruamel's Emitter.write_double_quoted (allow_unicode on).
func (e *yamlEmitter) doubleQuoted(text []rune, indent int, split bool) {
	e.indicator("\"", true, false, false)
	start := 0
	for end := 0; end <= len(text); end++ {
		ch := rune(-1)
		if end < len(text) {
			ch = text[end]
		}
		if ch == -1 || ch == '"' || ch == '\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 || ch == 0xFEFF || !yamlPrintable(ch) {
			if start < end {
				e.write(string(text[start:end]))
				start = end
			}
			if ch != -1 {
				var data string
				switch esc, ok := yamlEscapes[ch]; {
				case ok:
					data = "\\" + esc
				case ch <= 0xFF:
					data = fmt.Sprintf("\\x%02X", ch)
				case ch <= 0xFFFF:
					data = fmt.Sprintf("\\u%04X", ch)
				default:
					data = fmt.Sprintf("\\U%08X", ch)
				}
				e.write(data)
				start = end + 1
			}
		}
		if end > 0 && end < len(text)-1 && (ch == ' ' || start >= end) && e.col+(end-start) > yamlBestWidth && split {
			needBackslash := true
			if sp := indexRune(text, ' ', end, len(text)); sp >= 0 {
				if nl := indexRune(text, '\n', end, sp); nl >= 0 {
					sp = nl
				}
				switch {
				case sp+1 >= len(text): // IndexError in ruamel: keep the backslash
				case text[sp] == '\n' && text[sp+1] != ' ':
				case !containsQuote(text[end:sp]) && text[sp+1] != ' ' && text[sp+1] != '\n' &&
					!(text[end-1] == ' ' && text[end] == ' ') && start != end:
					needBackslash = false
				}
			}
			data := ""
			if start < end { // Python's text[start:end] is empty when start > end
				data = string(text[start:end])
			}
			if needBackslash {
				data += "\\"
			}
			if start < end {
				start = end
			}
			e.write(data)
			e.writeIndent(indent)
			e.whitespace, e.indention = false, false
			if start < len(text) && text[start] == ' ' {
				if !needBackslash {
					start++
				} else {
					e.write("\\")
				}
			}
		}
	}
	e.indicator("\"", false, false, false)
}

// ruamel's YAML 1.2 implicit resolvers (ruamel/yaml/resolver.py): a plain scalar matching one
// of them is read back as something other than a string.
var yaml12Implicit = regexp.MustCompile(`^(?:` +
	`true|True|TRUE|false|False|FALSE` +
	`|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+` +
	`|<<|~|null|Null|NULL|=` +
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]` +
	`|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?` +
	`)$`)

// yamlStyle returns 0 (plain), '\” or '"': ruamel's choose_scalar_style for a str.
func yamlStyle(s string, simpleKey bool) byte {
	a := analyzeScalar(s)
	implicit := s != "" && !yaml12Implicit.MatchString(s)
	if implicit && a.allowBlockPlain && !(simpleKey && (a.empty || a.multiline)) {
		return 0
	}
	if strings.ContainsAny(s, "'\n") {
		return '"'
	}
	if a.allowSingle && !(simpleKey && a.multiline) {
		return '\''
	}
	return '"'
}

type scalarAnalysis struct {
	empty, multiline, allowBlockPlain, allowSingle bool
}

// analyzeScalar is the block-context part of ruamel's Emitter.analyze_scalar.
func analyzeScalar(s string) scalarAnalysis {
	if s == "" {
		return scalarAnalysis{empty: true, allowBlockPlain: true, allowSingle: true}
	}
	text := []rune(s)
	isWS := func(i int) bool {
		if i < 0 || i >= len(text) {
			return true
		}
		switch text[i] {
		case 0, ' ', '\t', '\r', '\n', 0x85, 0x2028, 0x2029:
			return true
		}
		return false
	}
	var blockInd, lineBreaks, special, leadSpace, leadBreak, trailSpace, trailBreak, breakSpace, spaceBreak bool
	if strings.HasPrefix(s, "---") || strings.HasPrefix(s, "...") {
		blockInd = true
	}
	prevSpace, prevBreak := false, false
	for i, ch := range text {
		followed := isWS(i + 1)
		if i == 0 {
			if strings.ContainsRune("#,[]{}&*!|>'\"%@`", ch) {
				blockInd = true
			}
			if (ch == '?' || ch == ':') && followed {
				blockInd = true
			}
			if ch == '-' && followed {
				blockInd = true
			}
		} else {
			if ch == ':' && followed {
				blockInd = true
			}
			if ch == '#' && isWS(i-1) {
				blockInd = true
			}
		}
		isBreak := ch == '\n' || ch == 0x85 || ch == 0x2028 || ch == 0x2029
		if isBreak {
			lineBreaks = true
		}
		if !(ch == '\n' || (ch >= 0x20 && ch <= 0x7E)) {
			if !((ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD) || (ch >= 0x10000 && ch <= 0x10FFFF)) && ch != 0xFEFF) {
				special = true
			}
		}
		switch {
		case ch == ' ':
			if i == 0 {
				leadSpace = true
			}
			if i == len(text)-1 {
				trailSpace = true
			}
			if prevBreak {
				breakSpace = true
			}
			prevSpace, prevBreak = true, false
		case isBreak:
			if i == 0 {
				leadBreak = true
			}
			if i == len(text)-1 {
				trailBreak = true
			}
			if prevSpace {
				spaceBreak = true
			}
			prevSpace, prevBreak = false, true
		default:
			prevSpace, prevBreak = false, false
		}
	}
	a := scalarAnalysis{multiline: lineBreaks, allowBlockPlain: true, allowSingle: true}
	if leadSpace || leadBreak || trailSpace || trailBreak {
		a.allowBlockPlain = false
	}
	if breakSpace || special || spaceBreak {
		a.allowBlockPlain, a.allowSingle = false, false
	}
	if lineBreaks || blockInd {
		a.allowBlockPlain = false
	}
	return a
}

// PyFloat formats f as Python's repr does (shortest round-trip digits; exponent form below
// 1e-4 and from 1e16), with ruamel's spellings of the special values.
func PyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	sign := ""
	if neg {
		sign = "-"
	}
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	var s string
	switch {
	case exp < 0:
		s = "0." + strings.Repeat("0", -exp-1) + digits
	case exp+1 >= len(digits):
		s = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	default:
		s = digits[:exp+1] + "." + digits[exp+1:]
	}
	return sign + s
}
