package dvcfmt

import (
	"fmt"
)

// The three scalar styles of the YAML emitter (plain, single- and double-quoted) with
// ruamel's line folding at best_width.

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
