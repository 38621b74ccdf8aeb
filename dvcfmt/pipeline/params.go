package pipeline

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// Params is a parsed params file. Values keep the file's order (dvc writes nested mappings
// in that order) and their YAML types: nil, bool, int64, float64, string, dvcfmt.YAMLMap or
// []any.
type Params struct {
	root dvcfmt.YAMLMap
}

// ParseParams reads a YAML params file (params.yaml).
func ParseParams(data []byte) (*Params, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("params file larger than %d bytes", maxFileSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return &Params{}, nil
	}
	v, err := nodeValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(dvcfmt.YAMLMap)
	if !ok {
		return nil, errors.New("params file: top level is not a mapping")
	}
	return &Params{root: m}, nil
}

// nodeValue converts a YAML node to the value types of Params (aliases resolved).
func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := dvcfmt.YAMLMap{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" {
				return nil, errors.New("YAML merge keys are not supported in params files")
			}
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m = append(m, dvcfmt.YAMLItem{Key: n.Content[i].Value, Value: v})
		}
		return m, nil
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				var f float64 // beyond int64: Python keeps it exact, we keep it as a float
				if ferr := n.Decode(&f); ferr != nil {
					return nil, err
				}
				return f, nil
			}
			return i, nil
		case "!!float":
			var f float64
			err := n.Decode(&f)
			return f, err
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("unsupported YAML node at line %d", n.Line)
}

// Lookup returns the value of a dotted key (e.g. "arch.dropout").
func (p *Params) Lookup(key string) (any, bool) {
	if p == nil {
		return nil, false
	}
	var cur any = p.root
	for _, part := range strings.Split(key, ".") {
		switch x := cur.(type) {
		case dvcfmt.YAMLMap:
			v, ok := x.Get(part)
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Keys returns the top-level keys.
func (p *Params) Keys() []string {
	if p == nil {
		return nil
	}
	var keys []string
	for _, it := range p.root {
		keys = append(keys, it.Key)
	}
	return keys
}

// Values returns the values of keys (every top-level key when keys is nil), sorted by key,
// as dvc records them in dvc.lock. A missing key is an error matching ErrMissingParam.
func (p *Params) Values(file string, keys []string) (dvcfmt.YAMLMap, error) {
	if keys == nil {
		keys = p.Keys()
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	var out dvcfmt.YAMLMap
	var missing []string
	for i, k := range sorted {
		if i > 0 && sorted[i-1] == k {
			continue
		}
		v, ok := p.Lookup(k)
		if !ok {
			missing = append(missing, k)
			continue
		}
		out = append(out, dvcfmt.YAMLItem{Key: k, Value: v})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s missing from %s", ErrMissingParam, strings.Join(missing, ", "), file)
	}
	return out, nil
}

// Equal compares two param values as dvc does (Python ==): mappings regardless of key order,
// 1 == 1.0.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case dvcfmt.YAMLMap:
		y, ok := b.(dvcfmt.YAMLMap)
		if !ok || len(x) != len(y) {
			return false
		}
		for _, it := range x {
			v, ok := y.Get(it.Key)
			if !ok || !Equal(it.Value, v) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && (fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)))
	}
	return a == b
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case bool: // Python: True == 1
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
