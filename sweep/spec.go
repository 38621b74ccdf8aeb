// Package sweep runs hyper-parameter searches: a search space declared in YAML (grid,
// random, or random/grid with successive halving that stops bad trials early), trials run
// in sequence or in parallel by a caller-supplied Runner, and a state file that lets an
// interrupted sweep resume where it stopped. It knows nothing of libtorch or MLflow:
// cmd/catdog wires train.Run and the MLflow tracking session into a Runner.
package sweep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Search methods.
const (
	Grid    = "grid"
	Random  = "random"
	Halving = "halving" // random (or grid when trials is 0) with successive-halving early stopping
)

// Goals.
const (
	Maximize = "maximize"
	Minimize = "minimize"
)

// maxTrials bounds a sweep (a grid of many values multiplies quickly).
const maxTrials = 10000

// Spec is a search declared in YAML:
//
//	method: halving          # grid | random | halving
//	metric: val_accuracy     # reported by every epoch
//	goal: maximize           # or minimize
//	trials: 8                # random/halving: number of sampled trials
//	seed: 1                  # sampling seed
//	halving: {min_epochs: 1, eta: 2}
//	parameters:
//	  lr: {values: [0.001, 0.003]}                   # a choice (grid axis)
//	  weight_decay: {min: 1.0e-5, max: 1.0e-3, log: true}   # a range (random only)
//	  batch_size: {values: [16, 32]}
//	  arch.dropout: {min: 0.1, max: 0.4}
//
// Parameter names are params.yaml keys, dotted for nested ones (arch.dropout, augment.scale).
type Spec struct {
	Method     string           `yaml:"method"`
	Metric     string           `yaml:"metric"`
	Goal       string           `yaml:"goal"`
	Trials     int              `yaml:"trials"`
	Seed       uint64           `yaml:"seed"`
	Halving    HalvingSpec      `yaml:"halving"`
	Parameters map[string]Param `yaml:"parameters"`
}

// HalvingSpec configures successive halving: rungs at MinEpochs·Eta^k epochs; at each rung a
// trial goes on only if its metric is in the top 1/Eta of the trials that reached the rung.
type HalvingSpec struct {
	MinEpochs int `yaml:"min_epochs"`
	Eta       int `yaml:"eta"`
}

// Param is one axis of the space: a list of values, or a numeric range [Min, Max] sampled
// uniformly (log-uniformly with Log; rounded with Int).
type Param struct {
	Values []any    `yaml:"values"`
	Min    *float64 `yaml:"min"`
	Max    *float64 `yaml:"max"`
	Log    bool     `yaml:"log"`
	Int    bool     `yaml:"int"`
}

// ReadSpec reads and validates a spec file. Unknown keys are an error.
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	s, err := parseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("sweep: %s: %w", path, err)
	}
	return s, nil
}

// parseSpec parses and validates a spec, filling defaults (goal maximize, eta 3, min_epochs 1).
func parseSpec(b []byte) (*Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if s.Goal == "" {
		s.Goal = Maximize
	}
	if s.Halving.Eta == 0 {
		s.Halving.Eta = 3
	}
	if s.Halving.MinEpochs == 0 {
		s.Halving.MinEpochs = 1
	}
	return &s, s.Validate()
}

// Validate reports the first problem of the spec.
func (s *Spec) Validate() error {
	switch {
	case s.Method != Grid && s.Method != Random && s.Method != Halving:
		return fmt.Errorf("method %q: want grid, random or halving", s.Method)
	case s.Metric == "":
		return errors.New("metric is required (e.g. val_accuracy)")
	case s.Goal != Maximize && s.Goal != Minimize:
		return fmt.Errorf("goal %q: want maximize or minimize", s.Goal)
	case len(s.Parameters) == 0:
		return errors.New("parameters: the search space is empty")
	case s.Trials < 0 || s.Trials > maxTrials:
		return fmt.Errorf("trials %d out of [0,%d]", s.Trials, maxTrials)
	case s.Method == Random && s.Trials == 0:
		return errors.New("trials: random search needs the number of trials")
	case s.Method == Grid && s.Trials != 0:
		return errors.New("trials: a grid runs every combination; remove trials or use method random")
	case s.Halving.Eta < 2:
		return fmt.Errorf("halving.eta %d: want at least 2", s.Halving.Eta)
	case s.Halving.MinEpochs < 1:
		return fmt.Errorf("halving.min_epochs %d: want at least 1", s.Halving.MinEpochs)
	}
	grid := s.Method == Grid || (s.Method == Halving && s.Trials == 0)
	n := 1
	for _, name := range s.names() {
		p := s.Parameters[name]
		if name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("parameter %q: bad name", name)
		}
		hasRange := p.Min != nil || p.Max != nil
		switch {
		case len(p.Values) > 0 && hasRange:
			return fmt.Errorf("parameter %s: give values or min/max, not both", name)
		case len(p.Values) == 0 && !hasRange:
			return fmt.Errorf("parameter %s: give values or min/max", name)
		case hasRange && (p.Min == nil || p.Max == nil || !(*p.Min <= *p.Max) || math.IsInf(*p.Min, 0) || math.IsInf(*p.Max, 0)):
			return fmt.Errorf("parameter %s: want finite min <= max", name)
		case hasRange && p.Log && *p.Min <= 0:
			return fmt.Errorf("parameter %s: a log range needs min > 0", name)
		case hasRange && grid:
			return fmt.Errorf("parameter %s: a grid needs values, not a range (or set trials to sample it)", name)
		}
		for _, v := range p.Values {
			switch v.(type) {
			case int, float64, string, bool, []any:
			default:
				return fmt.Errorf("parameter %s: value %v of type %T is not a number, string, bool or list", name, v, v)
			}
		}
		if grid {
			n *= len(p.Values)
			if n > maxTrials {
				return fmt.Errorf("the grid has more than %d combinations", maxTrials)
			}
		}
	}
	return nil
}

// names returns the parameter names, sorted (the trial order does not depend on map order).
func (s *Spec) names() []string {
	names := make([]string, 0, len(s.Parameters))
	for k := range s.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Names returns the parameter names, sorted.
func (s *Spec) Names() []string { return s.names() }

// Better reports whether metric a beats b under the spec's goal (NaN never wins).
func (s *Spec) Better(a, b float64) bool {
	switch {
	case math.IsNaN(a):
		return false
	case math.IsNaN(b):
		return true
	case s.Goal == Minimize:
		return a < b
	}
	return a > b
}

// Hash fingerprints the spec (a resumed sweep must run the same search).
func (s *Spec) Hash() string {
	b, _ := yaml.Marshal(s) // map keys are sorted by yaml.v3
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Trial is one point of the space. Params keep the spec's values (numbers, strings, lists).
type Trial struct {
	Index  int            `json:"index"`
	Params map[string]any `json:"params"`
}

// GenerateTrials returns the sweep's trials, deterministically: every grid combination (in
// sorted parameter order, the last parameter varying fastest), or Trials samples drawn with Seed.
func (s *Spec) GenerateTrials() []Trial {
	names := s.names()
	if s.Method == Grid || (s.Method == Halving && s.Trials == 0) {
		trials := []Trial{{Params: map[string]any{}}}
		for _, name := range names {
			var next []Trial
			for _, t := range trials {
				for _, v := range s.Parameters[name].Values {
					p := make(map[string]any, len(t.Params)+1)
					for k, x := range t.Params {
						p[k] = x
					}
					p[name] = v
					next = append(next, Trial{Params: p})
				}
			}
			trials = next
		}
		for i := range trials {
			trials[i].Index = i
		}
		return trials
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x5eed))
	trials := make([]Trial, s.Trials)
	for i := range trials {
		p := map[string]any{}
		for _, name := range names {
			p[name] = s.Parameters[name].sample(rng)
		}
		trials[i] = Trial{Index: i, Params: p}
	}
	return trials
}

func (p Param) sample(rng *rand.Rand) any {
	if len(p.Values) > 0 {
		return p.Values[rng.IntN(len(p.Values))]
	}
	lo, hi := *p.Min, *p.Max
	var v float64
	if p.Log {
		v = math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	} else {
		v = lo + rng.Float64()*(hi-lo)
	}
	if p.Int {
		return int(math.Round(v))
	}
	// 4 significant digits: readable params, and the same string on every platform
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return f
}

// FormatValue renders a parameter value as it is logged (MLflow params are strings).
func FormatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = FormatValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

// FormatParams renders a trial's parameters as "a=1 b=x", sorted by name.
func FormatParams(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + FormatValue(p[k])
	}
	return strings.Join(parts, " ")
}
