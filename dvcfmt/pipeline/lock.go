package pipeline

import (
	"errors"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// LockEntry is the recorded state of one dependency or output.
type LockEntry struct {
	Path   string
	MD5    string // "<hex>" or "<hex>.dir"
	Size   int64
	NFiles int64 // directories only
	IsExec bool  // files only
}

// IsDir reports whether the entry is a directory (its md5 is a .dir oid).
func (e LockEntry) IsDir() bool { return dvcfmt.IsDirOID(e.MD5) }

// ParamValues are the values one stage read from one params file.
type ParamValues struct {
	File   string
	Values dvcfmt.YAMLMap // sorted by key
}

// LockStage is one stage's entry in dvc.lock.
type LockStage struct {
	Name      string
	Cmd       []string
	CmdIsList bool
	Deps      []LockEntry // sorted by path
	Params    []ParamValues
	Outs      []LockEntry // sorted by path
}

// Lock is a dvc.lock file: the stages in the file's order.
type Lock struct {
	Stages []LockStage
}

// Stage returns the entry of stage name, or nil.
func (l *Lock) Stage(name string) *LockStage {
	if l == nil {
		return nil
	}
	for i := range l.Stages {
		if l.Stages[i].Name == name {
			return &l.Stages[i]
		}
	}
	return nil
}

// Set replaces the entry of s.Name, or appends it (dvc keeps the order of existing entries and
// appends new ones in the order the stages ran).
func (l *Lock) Set(s LockStage) {
	for i := range l.Stages {
		if l.Stages[i].Name == s.Name {
			l.Stages[i] = s
			return
		}
	}
	l.Stages = append(l.Stages, s)
}

// Remove drops the entry of stage name (a stage no longer in dvc.yaml).
func (l *Lock) Remove(name string) {
	for i := range l.Stages {
		if l.Stages[i].Name == name {
			l.Stages = append(l.Stages[:i], l.Stages[i+1:]...)
			return
		}
	}
}

// Encode returns the dvc.lock text exactly as dvc writes it.
func (l *Lock) Encode() ([]byte, error) {
	var stages dvcfmt.YAMLMap
	for _, s := range l.Stages {
		var m dvcfmt.YAMLMap
		if s.CmdIsList {
			cmds := make([]any, len(s.Cmd))
			for i, c := range s.Cmd {
				cmds[i] = c
			}
			m = append(m, dvcfmt.YAMLItem{Key: "cmd", Value: cmds})
		} else if len(s.Cmd) == 1 {
			m = append(m, dvcfmt.YAMLItem{Key: "cmd", Value: s.Cmd[0]})
		} else {
			return nil, fmt.Errorf("stage %q: no command", s.Name)
		}
		if len(s.Deps) > 0 {
			m = append(m, dvcfmt.YAMLItem{Key: "deps", Value: entries(s.Deps)})
		}
		if len(s.Params) > 0 {
			var pm dvcfmt.YAMLMap
			for _, pv := range sortedParams(s.Params) {
				pm = append(pm, dvcfmt.YAMLItem{Key: pv.File, Value: pv.Values})
			}
			m = append(m, dvcfmt.YAMLItem{Key: "params", Value: pm})
		}
		if len(s.Outs) > 0 {
			m = append(m, dvcfmt.YAMLItem{Key: "outs", Value: entries(s.Outs)})
		}
		stages = append(stages, dvcfmt.YAMLItem{Key: s.Name, Value: m})
	}
	if stages == nil {
		stages = dvcfmt.YAMLMap{}
	}
	return dvcfmt.EncodeYAML(dvcfmt.YAMLMap{{Key: "schema", Value: LockSchema}, {Key: "stages", Value: stages}})
}

// sortedParams puts params.yaml first and the other files in name order, as dvc does.
func sortedParams(ps []ParamValues) []ParamValues {
	out := append([]ParamValues(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].File, out[j].File
		if (a == DefaultParams) != (b == DefaultParams) {
			return a == DefaultParams
		}
		return a < b
	})
	return out
}

func entries(es []LockEntry) []any {
	sorted := append([]LockEntry(nil), es...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	out := make([]any, len(sorted))
	for i, e := range sorted {
		m := dvcfmt.YAMLMap{{Key: "path", Value: e.Path}, {Key: "hash", Value: dvcfmt.HashMD5}, {Key: "md5", Value: e.MD5}, {Key: "size", Value: e.Size}}
		if e.IsDir() {
			m = append(m, dvcfmt.YAMLItem{Key: "nfiles", Value: e.NFiles})
		} else if e.IsExec {
			m = append(m, dvcfmt.YAMLItem{Key: "isexec", Value: true})
		}
		out[i] = m
	}
	return out
}

// ParseLock reads dvc.lock text (schema 2.0).
func ParseLock(data []byte) (*Lock, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", LockFile, maxFileSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", LockFile, err)
	}
	l := &Lock{}
	if len(doc.Content) == 0 {
		return l, nil
	}
	v, err := nodeValue(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", LockFile, err)
	}
	root, ok := v.(dvcfmt.YAMLMap)
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a mapping", LockFile)
	}
	if schema, _ := root.Get("schema"); schema != LockSchema {
		return nil, fmt.Errorf("%s: schema %v is not supported (want '2.0')", LockFile, schema)
	}
	stagesV, _ := root.Get("stages")
	stages, ok := stagesV.(dvcfmt.YAMLMap)
	if stagesV != nil && !ok {
		return nil, fmt.Errorf("%s: stages is not a mapping", LockFile)
	}
	for _, it := range stages {
		s, err := parseLockStage(it.Key, it.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: stage %q: %w", LockFile, it.Key, err)
		}
		l.Stages = append(l.Stages, s)
	}
	return l, nil
}

func parseLockStage(name string, v any) (LockStage, error) {
	s := LockStage{Name: name}
	m, ok := v.(dvcfmt.YAMLMap)
	if !ok {
		return s, errors.New("not a mapping")
	}
	for _, it := range m {
		var err error
		switch it.Key {
		case "cmd":
			switch c := it.Value.(type) {
			case string:
				s.Cmd = []string{c}
			case []any:
				s.CmdIsList = true
				for _, x := range c {
					str, ok := x.(string)
					if !ok {
						return s, errors.New("cmd: list items must be strings")
					}
					s.Cmd = append(s.Cmd, str)
				}
			default:
				return s, errors.New("cmd must be a string or a list")
			}
		case "deps":
			s.Deps, err = parseEntries(it.Value)
		case "outs":
			s.Outs, err = parseEntries(it.Value)
		case "params":
			pm, ok := it.Value.(dvcfmt.YAMLMap)
			if !ok {
				return s, errors.New("params is not a mapping")
			}
			for _, f := range pm {
				vals, ok := f.Value.(dvcfmt.YAMLMap)
				if !ok && f.Value != nil {
					return s, fmt.Errorf("params: %s is not a mapping", f.Key)
				}
				s.Params = append(s.Params, ParamValues{File: f.Key, Values: vals})
			}
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", it.Key, err)
		}
	}
	return s, nil
}

func parseEntries(v any) ([]LockEntry, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, errors.New("not a list")
	}
	var out []LockEntry
	for _, x := range l {
		m, ok := x.(dvcfmt.YAMLMap)
		if !ok {
			return nil, errors.New("entries must be mappings")
		}
		var e LockEntry
		for _, it := range m {
			switch it.Key {
			case "path":
				e.Path, _ = it.Value.(string)
			case "md5":
				e.MD5, _ = it.Value.(string)
			case "size":
				e.Size, _ = it.Value.(int64)
			case "nfiles":
				e.NFiles, _ = it.Value.(int64)
			case "isexec":
				e.IsExec, _ = it.Value.(bool)
			}
		}
		if e.Path == "" {
			return nil, errors.New("entry without path")
		}
		out = append(out, e)
	}
	return out, nil
}
