package dvcfmt

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Which scalar style ruamel picks for a string (plain only when YAML 1.2 reads it back as the
// same string), and Python's float repr.

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
