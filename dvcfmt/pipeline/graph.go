package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// overlaps reports whether path a equals b or one is inside the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// upstream returns the stages whose outputs stage s depends on.
func (p *Pipeline) upstream(s *Stage) []*Stage {
	var up []*Stage
	for _, o := range p.Stages {
		if o == s {
			continue
		}
	outs:
		for _, out := range o.Outs {
			for _, d := range s.Deps {
				if overlaps(out.Path, d) {
					up = append(up, o)
					break outs
				}
			}
		}
	}
	return up
}

// Order returns the stages so that each comes after the stages producing its dependencies
// (stages that do not depend on each other keep their dvc.yaml order). Two stages writing
// the same output or a cycle are errors naming the stages.
func (p *Pipeline) Order() ([]*Stage, error) {
	owner := map[string]string{}
	for _, s := range p.Stages {
		for _, o := range s.Outs {
			for path, other := range owner {
				if other != s.Name && overlaps(path, o.Path) {
					return nil, &StageError{Stage: s.Name, Err: fmt.Errorf("output %s overlaps output %s of stage %q", o.Path, path, other)}
				}
			}
			owner[o.Path] = s.Name
		}
	}
	const (
		unseen = iota
		visiting
		done
	)
	mark := map[*Stage]int{}
	var order []*Stage
	var stack []string
	var visit func(s *Stage) error
	visit = func(s *Stage) error {
		switch mark[s] {
		case done:
			return nil
		case visiting:
			i := 0
			for i < len(stack) && stack[i] != s.Name {
				i++
			}
			cycle := append(append([]string{}, stack[i:]...), s.Name)
			return &StageError{Stage: s.Name, Err: fmt.Errorf("%w: %s", ErrCycle, strings.Join(cycle, " -> "))}
		}
		mark[s] = visiting
		stack = append(stack, s.Name)
		for _, u := range p.upstream(s) {
			if err := visit(u); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		mark[s] = done
		order = append(order, s)
		return nil
	}
	for _, s := range p.Stages {
		if err := visit(s); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// downstream returns the names of the stages that depend, directly or not, on stage name.
func (p *Pipeline) downstream(name string) []string {
	var out []string
	seen := map[string]bool{name: true}
	changed := true
	for changed {
		changed = false
		for _, s := range p.Stages {
			if seen[s.Name] {
				continue
			}
			for _, u := range p.upstream(s) {
				if seen[u.Name] {
					seen[s.Name], changed = true, true
					out = append(out, s.Name)
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
