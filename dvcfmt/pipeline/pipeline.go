// Package pipeline reads and writes DVC 3 pipeline files: dvc.yaml (stages with cmd, deps,
// params, outs, metrics and plots, `${}` interpolation from params.yaml), params files and
// dvc.lock, byte for byte as `dvc repro` writes it. It also orders the stages (the DAG dvc
// builds from outs feeding deps) and says why a stage is stale given the current hashes.
//
// Like package dvcfmt it does no I/O: callers pass file contents and hashes in. Running
// stages, hashing the workspace and committing outputs to the cache is dvcfmt/repo's job.
package pipeline

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// File names dvc uses.
const (
	PipelineFile  = "dvc.yaml"
	LockFile      = "dvc.lock"
	DefaultParams = "params.yaml"
	// LockSchema is the only dvc.lock schema dvc 3 reads (a string, not a number).
	LockSchema = "2.0"
)

// maxFileSize bounds the pipeline, params and lock files parsed here.
const maxFileSize = 16 << 20

// OutKind tells which list of a stage an output came from.
type OutKind string

// Output kinds.
const (
	KindOut    OutKind = "outs"
	KindMetric OutKind = "metrics"
	KindPlot   OutKind = "plots"
)

// Out is one output of a stage.
type Out struct {
	Path    string // relative to the repository root, slash-separated
	Kind    OutKind
	Cache   bool // committed to the DVC cache (dvc's default; metrics and plots often set false)
	Persist bool // not removed before the command runs
}

// ParamDep is the params one stage reads from one params file.
type ParamDep struct {
	File string   // e.g. params.yaml
	Keys []string // dotted keys; nil means every top-level key of the file
}

// Stage is one stage of dvc.yaml after interpolation.
type Stage struct {
	Name          string
	Cmd           []string // one command, or the list of commands
	CmdIsList     bool
	Deps          []string // paths relative to the repository root (may start with ../)
	Params        []ParamDep
	Outs          []Out // in dvc.yaml order
	Frozen        bool
	AlwaysChanged bool
	Desc          string
}

// Pipeline is a parsed dvc.yaml.
type Pipeline struct {
	Stages []*Stage // in dvc.yaml order
}

// Stage returns the stage called name.
func (p *Pipeline) Stage(name string) *Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// StageError is an error about one stage; every error about a stage's definition, its
// dependencies, params or command is one, so callers (and users) see which stage it was.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("stage %q: %v", e.Stage, e.Err) }
func (e *StageError) Unwrap() error { return e.Err }

// ErrCycle is matched (errors.Is) by the error for stages that depend on each other.
var ErrCycle = errors.New("pipeline has a cycle")

// ErrMissingParam is matched by the error for a param a stage names that the params file
// does not define.
var ErrMissingParam = errors.New("param not found")

var stageNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Parse reads dvc.yaml text. vars holds the parsed params.yaml (nil when absent): dvc
// interpolates `${key}` in cmd, deps and outs from it.
func Parse(data []byte, vars *Params) (*Pipeline, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", PipelineFile, maxFileSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", PipelineFile, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty file", PipelineFile)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: top level is not a mapping", PipelineFile)
	}
	p := &Pipeline{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		switch key {
		case "stages":
			if val.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%s: stages is not a mapping", PipelineFile)
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				name := val.Content[j].Value
				if !stageNameRE.MatchString(name) {
					return nil, fmt.Errorf("%s: invalid stage name %q", PipelineFile, name)
				}
				if p.Stage(name) != nil {
					return nil, fmt.Errorf("%s: stage %q defined twice", PipelineFile, name)
				}
				s, err := parseStage(name, val.Content[j+1], vars)
				if err != nil {
					return nil, &StageError{Stage: name, Err: err}
				}
				p.Stages = append(p.Stages, s)
			}
		case "plots", "metrics", "params", "artifacts", "datasets":
			// top-level sections for `dvc plots/metrics/params`; dvc reads them itself
		case "vars":
			return nil, fmt.Errorf("%s: top-level vars are not supported (params.yaml is interpolated)", PipelineFile)
		default:
			return nil, fmt.Errorf("%s: unknown top-level key %q", PipelineFile, key)
		}
	}
	if len(p.Stages) == 0 {
		return nil, fmt.Errorf("%s: no stages", PipelineFile)
	}
	if _, err := p.Order(); err != nil {
		return nil, err
	}
	return p, nil
}

func parseStage(name string, n *yaml.Node, vars *Params) (*Stage, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("not a mapping")
	}
	s := &Stage{Name: name}
	interp := func(v string) (string, error) { return interpolate(v, vars) }
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var err error
		switch key {
		case "cmd":
			switch val.Kind {
			case yaml.ScalarNode:
				var c string
				if c, err = interp(val.Value); err == nil {
					s.Cmd = []string{c}
				}
			case yaml.SequenceNode:
				s.CmdIsList = true
				for _, c := range val.Content {
					if c.Kind != yaml.ScalarNode {
						return nil, errors.New("cmd: list items must be strings")
					}
					v, err := interp(c.Value)
					if err != nil {
						return nil, fmt.Errorf("cmd: %w", err)
					}
					s.Cmd = append(s.Cmd, v)
				}
			default:
				return nil, errors.New("cmd must be a string or a list of strings")
			}
		case "deps":
			var deps []string
			if deps, err = stringList(val); err == nil {
				for _, d := range deps {
					v, ierr := interp(d)
					if ierr != nil {
						return nil, fmt.Errorf("deps: %w", ierr)
					}
					if path.IsAbs(v) { // an external dependency, as dvc allows
						v = path.Clean(v)
					} else if v, err = cleanPath(v); err != nil {
						return nil, fmt.Errorf("deps: %w", err)
					}
					s.Deps = append(s.Deps, v)
				}
			}
		case "params":
			s.Params, err = parseParamDeps(val)
		case "outs", "metrics", "plots":
			var outs []Out
			if outs, err = parseOuts(val, OutKind(key), interp); err == nil {
				s.Outs = append(s.Outs, outs...)
			}
		case "frozen":
			s.Frozen, err = boolValue(val)
		case "always_changed":
			s.AlwaysChanged, err = boolValue(val)
		case "desc":
			s.Desc = val.Value
		case "meta":
		case "wdir":
			if val.Value != "." && val.Value != "" {
				err = errors.New("wdir other than . is not supported")
			}
		case "vars", "foreach", "do", "matrix":
			err = fmt.Errorf("%s is not supported", key)
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if len(s.Cmd) == 0 || (len(s.Cmd) == 1 && strings.TrimSpace(s.Cmd[0]) == "") {
		return nil, errors.New("cmd is required")
	}
	seen := map[string]bool{}
	for _, o := range s.Outs {
		if seen[o.Path] {
			return nil, fmt.Errorf("output %s listed twice", o.Path)
		}
		seen[o.Path] = true
		if strings.HasPrefix(o.Path, "../") {
			return nil, fmt.Errorf("output %s is outside the repository", o.Path)
		}
		for _, d := range s.Deps {
			if overlaps(o.Path, d) {
				return nil, fmt.Errorf("%w: output %s is also its own dependency %s", ErrCycle, o.Path, d)
			}
		}
	}
	return s, nil
}

func boolValue(n *yaml.Node) (bool, error) {
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, fmt.Errorf("not a boolean: %q", n.Value)
	}
	return b, nil
}

func stringList(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("not a list")
	}
	var out []string
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || c.Value == "" {
			return nil, errors.New("list items must be non-empty strings")
		}
		out = append(out, c.Value)
	}
	return out, nil
}

// cleanPath normalises a dvc.yaml path (slash-separated, relative to the repository root).
func cleanPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must be relative to the repository root", p)
	}
	c := path.Clean(p)
	if c == "." {
		return "", fmt.Errorf("path %q names the repository root", p)
	}
	return c, nil
}

func parseOuts(n *yaml.Node, kind OutKind, interp func(string) (string, error)) ([]Out, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("not a list")
	}
	var outs []Out
	for _, c := range n.Content {
		o := Out{Kind: kind, Cache: true}
		var raw string
		switch c.Kind {
		case yaml.ScalarNode:
			raw = c.Value
		case yaml.MappingNode:
			if len(c.Content) != 2 {
				return nil, errors.New("an entry with options must be a single `path: {options}` mapping")
			}
			raw = c.Content[0].Value
			opts := c.Content[1]
			if opts.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(opts.Content); i += 2 {
					k, v := opts.Content[i].Value, opts.Content[i+1]
					var err error
					switch k {
					case "cache":
						o.Cache, err = boolValue(v)
					case "persist":
						o.Persist, err = boolValue(v)
					case "desc", "type", "labels", "meta", "remote", "push",
						"x", "y", "x_label", "y_label", "title", "template", "header":
						// annotations, remote choices and plot properties dvc reads itself
					default:
						err = fmt.Errorf("unknown option %q", k)
					}
					if err != nil {
						return nil, fmt.Errorf("%s: %w", raw, err)
					}
				}
			} else if opts.Tag != "!!null" {
				return nil, fmt.Errorf("%s: options must be a mapping", raw)
			}
		default:
			return nil, errors.New("entries must be paths")
		}
		v, err := interp(raw)
		if err != nil {
			return nil, err
		}
		if o.Path, err = cleanPath(v); err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

func parseParamDeps(n *yaml.Node) ([]ParamDep, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("not a list")
	}
	byFile := map[string]*ParamDep{}
	var order []string
	add := func(file string, keys []string, all bool) {
		d, ok := byFile[file]
		if !ok {
			d = &ParamDep{File: file}
			byFile[file] = d
			order = append(order, file)
		}
		if all {
			d.Keys = nil
			return
		}
		d.Keys = append(d.Keys, keys...)
	}
	for _, c := range n.Content {
		switch c.Kind {
		case yaml.ScalarNode:
			add(DefaultParams, []string{c.Value}, false)
		case yaml.MappingNode:
			for i := 0; i+1 < len(c.Content); i += 2 {
				file, v := c.Content[i].Value, c.Content[i+1]
				if _, err := cleanPath(file); err != nil {
					return nil, err
				}
				if v.Tag == "!!null" {
					add(file, nil, true)
					continue
				}
				keys, err := stringList(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
				add(file, keys, false)
			}
		default:
			return nil, errors.New("entries must be keys or {file: [keys]}")
		}
	}
	var out []ParamDep
	for _, f := range order {
		out = append(out, *byFile[f])
	}
	return out, nil
}
