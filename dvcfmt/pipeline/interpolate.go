package pipeline

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

var interpRE = regexp.MustCompile(`\$\{\s*([^}]*?)\s*\}`)

// interpolate replaces every ${key} in s with the value of key (dotted, e.g. arch.dropout)
// in vars, formatted as dvc does (booleans as true/false, floats as Python prints them).
func interpolate(s string, vars *Params) (string, error) {
	var err error
	out := interpRE.ReplaceAllStringFunc(s, func(m string) string {
		if err != nil {
			return m
		}
		key := interpRE.FindStringSubmatch(m)[1]
		if vars == nil {
			err = fmt.Errorf("%w: ${%s} (no %s)", ErrMissingParam, key, DefaultParams)
			return m
		}
		v, ok := vars.Lookup(key)
		if !ok {
			err = fmt.Errorf("%w: ${%s} is not defined in %s", ErrMissingParam, key, DefaultParams)
			return m
		}
		switch x := v.(type) {
		case string:
			return x
		case bool:
			return strconv.FormatBool(x)
		case int64:
			return strconv.FormatInt(x, 10)
		case float64:
			return dvcfmt.PyFloat(x)
		case nil:
			return "None"
		}
		err = fmt.Errorf("${%s} is a %T; only scalars can be interpolated into a string", key, v)
		return m
	})
	return out, err
}
