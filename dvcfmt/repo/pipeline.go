package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/pipeline"
)

// Stage change kinds, worded as `dvc status` prints them.
const (
	ChangedCommand = "changed command"
	ChangedDeps    = "changed deps"
	ChangedOuts    = "changed outs"
	AlwaysChanged  = "always changed"
	NewStage       = "new stage" // no dvc.lock entry yet
)

// StageChange is one reason a stage is stale.
type StageChange struct {
	Kind  string // ChangedCommand, ChangedDeps, ChangedOuts, AlwaysChanged or NewStage
	Path  string // the dependency, params file or output
	Param string // the param key, for a changed param
	State string // StatusModified, StatusDeleted, StatusNotInCache, "new"
}

// StageStatus is a stale stage and why.
type StageStatus struct {
	Stage   string
	Changes []StageChange
}

// PipelineFiles are the parsed dvc.yaml, dvc.lock and params files of a repository.
type PipelineFiles struct {
	Pipeline *pipeline.Pipeline
	Lock     *pipeline.Lock
	Params   map[string]*pipeline.Params // by repository-relative file name
}

// loadPipeline reads dvc.yaml (with ${} from params.yaml), dvc.lock (empty when absent) and
// every params file the stages name.
func (r *Repo) loadPipeline() (*PipelineFiles, error) {
	pf := &PipelineFiles{Params: map[string]*pipeline.Params{}, Lock: &pipeline.Lock{}}
	vars, err := r.readParams(pipeline.DefaultParams, true)
	if err != nil {
		return nil, err
	}
	if vars != nil {
		pf.Params[pipeline.DefaultParams] = vars
	}
	b, err := readBounded(filepath.Join(r.Root, pipeline.PipelineFile))
	if err != nil {
		return nil, err
	}
	if pf.Pipeline, err = pipeline.Parse(b, vars); err != nil {
		return nil, err
	}
	for _, s := range pf.Pipeline.Stages {
		for _, p := range s.Params {
			if _, ok := pf.Params[p.File]; ok {
				continue
			}
			ps, err := r.readParams(p.File, false)
			if err != nil {
				return nil, &pipeline.StageError{Stage: s.Name, Err: err}
			}
			pf.Params[p.File] = ps
		}
	}
	lb, err := readBounded(filepath.Join(r.Root, pipeline.LockFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if pf.Lock, err = pipeline.ParseLock(lb); err != nil {
			return nil, err
		}
	}
	return pf, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 16<<20+1))
	if err == nil && len(b) > 16<<20 {
		err = fmt.Errorf("%s: larger than 16 MiB", path)
	}
	return b, err
}

func (r *Repo) readParams(name string, optional bool) (*pipeline.Params, error) {
	b, err := readBounded(filepath.Join(r.Root, filepath.FromSlash(name)))
	if errors.Is(err, fs.ErrNotExist) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("params file: %w", err)
	}
	p, err := pipeline.ParseParams(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// stageState is a stage's current deps, params and outs, and how they differ from dvc.lock.
type stageState struct {
	deps    []pipeline.LockEntry
	params  []pipeline.ParamValues
	changes []StageChange
	missing []string // dependencies that do not exist
}

// MissingDepError is returned for a stage whose dependency does not exist.
type MissingDepError struct{ Paths []string }

func (e *MissingDepError) Error() string {
	return fmt.Sprintf("dependency %s does not exist", strings.Join(e.Paths, ", "))
}

func (r *Repo) abs(rel string) string {
	if filepath.IsAbs(rel) {
		return filepath.FromSlash(rel)
	}
	return filepath.Join(r.Root, filepath.FromSlash(rel))
}

// inspect hashes a stage's dependencies and outputs and compares them with its lock entry.
func (r *Repo) inspect(ctx context.Context, pf *PipelineFiles, s *pipeline.Stage, st *state) (*stageState, error) {
	ls := pf.Lock.Stage(s.Name)
	res := &stageState{}
	if ls == nil {
		res.changes = append(res.changes, StageChange{Kind: NewStage})
	} else if ls.CmdIsList != s.CmdIsList || strings.Join(ls.Cmd, "\x00") != strings.Join(s.Cmd, "\x00") {
		res.changes = append(res.changes, StageChange{Kind: ChangedCommand})
	}
	locked := func(list []pipeline.LockEntry, path string) *pipeline.LockEntry {
		for i := range list {
			if list[i].Path == path {
				return &list[i]
			}
		}
		return nil
	}
	for _, d := range s.Deps {
		abs := r.abs(d)
		fi, err := os.Stat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			res.missing = append(res.missing, d)
			res.changes = append(res.changes, StageChange{Kind: ChangedDeps, Path: d, State: StatusDeleted})
			continue
		}
		if err != nil {
			return nil, err
		}
		h, err := r.hashPath(ctx, abs, fi, hashOnly, st, "Hashing "+d)
		if err != nil {
			return nil, err
		}
		e := pipeline.LockEntry{Path: d, MD5: h.md5, Size: h.size, NFiles: h.nfiles, IsExec: h.isExec && !fi.IsDir()}
		res.deps = append(res.deps, e)
		if ls != nil {
			if old := locked(ls.Deps, d); old == nil || old.MD5 != e.MD5 {
				res.changes = append(res.changes, StageChange{Kind: ChangedDeps, Path: d, State: StatusModified})
			}
		}
	}
	for _, p := range s.Params {
		vals, err := pf.Params[p.File].Values(p.File, p.Keys)
		if err != nil {
			return nil, err
		}
		res.params = append(res.params, pipeline.ParamValues{File: p.File, Values: vals})
		if ls == nil {
			continue
		}
		var old dvcfmt.YAMLMap
		for _, pv := range ls.Params {
			if pv.File == p.File {
				old = pv.Values
			}
		}
		for _, it := range vals {
			ov, ok := old.Get(it.Key)
			switch {
			case !ok:
				res.changes = append(res.changes, StageChange{Kind: ChangedDeps, Path: p.File, Param: it.Key, State: "new"})
			case !pipeline.Equal(ov, it.Value):
				res.changes = append(res.changes, StageChange{Kind: ChangedDeps, Path: p.File, Param: it.Key, State: StatusModified})
			}
		}
		for _, it := range old {
			if _, ok := vals.Get(it.Key); !ok {
				res.changes = append(res.changes, StageChange{Kind: ChangedDeps, Path: p.File, Param: it.Key, State: StatusDeleted})
			}
		}
	}
	if ls != nil {
		for _, o := range s.Outs {
			old := locked(ls.Outs, o.Path)
			if old == nil {
				res.changes = append(res.changes, StageChange{Kind: ChangedOuts, Path: o.Path, State: StatusModified})
				continue
			}
			cache := o.Cache
			out := Output{Abs: r.abs(o.Path), Name: o.Path, Out: dvcfmt.Out{MD5: old.MD5, Hash: dvcfmt.HashMD5, Path: o.Path, Cache: &cache}}
			state, err := r.outStatus(ctx, out, st)
			if err != nil {
				return nil, err
			}
			if state != "" {
				res.changes = append(res.changes, StageChange{Kind: ChangedOuts, Path: o.Path, State: state})
			}
		}
	}
	if s.AlwaysChanged {
		res.changes = append(res.changes, StageChange{Kind: AlwaysChanged})
	}
	return res, nil
}

// PipelineStatus lists the stale stages of dvc.yaml in pipeline order, like `dvc status`
// (frozen stages are not listed). Nothing is run or written.
func (r *Repo) PipelineStatus(ctx context.Context) ([]StageStatus, error) {
	pf, err := r.loadPipeline()
	if err != nil {
		return nil, err
	}
	order, err := pf.Pipeline.Order()
	if err != nil {
		return nil, err
	}
	st := r.openState()
	defer func() { _ = st.save() }()
	var out []StageStatus
	for _, s := range order {
		if s.Frozen {
			continue
		}
		ss, err := r.inspect(ctx, pf, s, st)
		if err != nil {
			return nil, &pipeline.StageError{Stage: s.Name, Err: err}
		}
		if len(ss.changes) > 0 {
			out = append(out, StageStatus{Stage: s.Name, Changes: ss.changes})
		}
	}
	return out, nil
}

// StageEvent reports progress of Repro as data; the caller draws it.
type StageEvent struct {
	Stage   string
	Phase   string // "skipped" (up to date), "running", "command", "done"
	Command string // for "command"
	Reasons []StageChange
}

// Stage event phases.
const (
	PhaseSkipped = "skipped"
	PhaseRunning = "running"
	PhaseCommand = "command"
	PhaseDone    = "done"
)

// ReproOptions configure Repro.
type ReproOptions struct {
	// Run runs one command of a stage in the repository root; nil runs it with $SHELL (or
	// /bin/sh) -c, as dvc does, with Stdout and Stderr.
	Run            func(ctx context.Context, stage, cmd string) error
	Stdout, Stderr io.Writer
	Force          bool // run every stage, stale or not
	DryRun         bool // report what would run; run and write nothing
	OnEvent        func(StageEvent)
}

// ReproResult says what Repro did.
type ReproResult struct {
	Ran     []string // stages whose commands ran (or would run, with DryRun)
	Skipped []string // up-to-date stages
}

// Repro brings the pipeline up to date like `dvc repro`: in pipeline order, every stale
// stage has its non-persistent outputs removed, its commands run, its outputs committed to
// the cache (and git-ignored), and its dvc.lock entry written exactly as dvc writes it. The
// lock file is rewritten atomically after each stage, so a failure (an error naming the
// stage: a missing dependency, an unknown param, a failing command, a missing output) keeps
// every entry of the stages that had succeeded.
func (r *Repo) Repro(ctx context.Context, o ReproOptions) (*ReproResult, error) {
	unlock, err := r.lock(ctx, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pf, err := r.loadPipeline()
	if err != nil {
		return nil, err
	}
	order, err := pf.Pipeline.Order()
	if err != nil {
		return nil, err
	}
	st := r.openState()
	defer func() { _ = st.save() }()
	emit := func(ev StageEvent) {
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
	}
	res := &ReproResult{}
	for _, s := range order {
		if s.Frozen {
			res.Skipped = append(res.Skipped, s.Name)
			emit(StageEvent{Stage: s.Name, Phase: PhaseSkipped})
			continue
		}
		ss, err := r.inspect(ctx, pf, s, st)
		if err != nil {
			return res, &pipeline.StageError{Stage: s.Name, Err: err}
		}
		if len(ss.missing) > 0 && !o.DryRun {
			return res, &pipeline.StageError{Stage: s.Name, Err: &MissingDepError{Paths: ss.missing}}
		}
		if len(ss.changes) == 0 && !o.Force {
			res.Skipped = append(res.Skipped, s.Name)
			emit(StageEvent{Stage: s.Name, Phase: PhaseSkipped})
			continue
		}
		res.Ran = append(res.Ran, s.Name)
		emit(StageEvent{Stage: s.Name, Phase: PhaseRunning, Reasons: ss.changes})
		if o.DryRun {
			continue
		}
		if err := r.runStage(ctx, pf, s, o, emit, st); err != nil {
			return res, &pipeline.StageError{Stage: s.Name, Err: err}
		}
		emit(StageEvent{Stage: s.Name, Phase: PhaseDone})
	}
	return res, nil
}

func (r *Repo) runStage(ctx context.Context, pf *PipelineFiles, s *pipeline.Stage, o ReproOptions, emit func(StageEvent), st *state) error {
	for _, out := range s.Outs {
		if out.Persist {
			continue
		}
		abs := r.abs(out.Path)
		if err := makeWritable(abs); err != nil {
			return err
		}
		if err := os.RemoveAll(abs); err != nil {
			return fmt.Errorf("removing output %s: %w", out.Path, err)
		}
		st.forgetTree(abs)
	}
	run := o.Run
	if run == nil {
		run = func(ctx context.Context, _, cmd string) error { return r.shell(ctx, cmd, o.Stdout, o.Stderr) }
	}
	for _, c := range s.Cmd {
		emit(StageEvent{Stage: s.Name, Phase: PhaseCommand, Command: c})
		if err := run(ctx, s.Name, c); err != nil {
			return fmt.Errorf("command %q failed: %w", c, err)
		}
	}
	// dvc hashes the dependencies again after the command (it may have touched them)
	ss, err := r.inspect(ctx, pf, s, st)
	if err != nil {
		return err
	}
	if len(ss.missing) > 0 {
		return &MissingDepError{Paths: ss.missing}
	}
	ls := pipeline.LockStage{Name: s.Name, Cmd: s.Cmd, CmdIsList: s.CmdIsList, Deps: ss.deps, Params: ss.params}
	for _, out := range s.Outs {
		abs := r.abs(out.Path)
		fi, err := os.Stat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("output %s does not exist after the command ran", out.Path)
		}
		if err != nil {
			return err
		}
		// dvc puts the objects of uncached outputs (cache: false) into the cache too, for
		// its run-cache; so does catdog, so that both caches hold the same objects
		h, err := r.hashPath(ctx, abs, fi, hashToCache, st, "Committing "+out.Path)
		if err != nil {
			return fmt.Errorf("output %s: %w", out.Path, err)
		}
		ls.Outs = append(ls.Outs, pipeline.LockEntry{Path: out.Path, MD5: h.md5, Size: h.size, NFiles: h.nfiles, IsExec: h.isExec && !fi.IsDir()})
		if out.Cache && r.scm {
			if err := r.gitignoreOut(abs); err != nil {
				return err
			}
		}
	}
	pf.Lock.Set(ls)
	b, err := pf.Lock.Encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.Root, pipeline.LockFile), b, 0o644)
}

// shell runs cmd as dvc does: $SHELL -c cmd (or /bin/sh), in the repository root.
func (r *Repo) shell(ctx context.Context, cmd string, stdout, stderr io.Writer) error {
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	c := exec.CommandContext(ctx, sh, "-c", cmd)
	c.Dir = r.Root
	c.Stdout, c.Stderr = stdout, stderr
	if c.Stdout == nil {
		c.Stdout = io.Discard
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	return c.Run()
}

// gitignoreOut adds "/name" to the .gitignore next to a cached output unless git already
// ignores it (scmrepo does the same check).
func (r *Repo) gitignoreOut(abs string) error {
	if git, err := exec.LookPath("git"); err == nil {
		c := exec.Command(git, "check-ignore", "-q", abs)
		c.Dir = r.Root
		if c.Run() == nil {
			return nil
		}
	}
	return addToGitignore(filepath.Dir(abs), filepath.Base(abs))
}

// makeWritable undoes read-only modes below abs (hardlinked or symlinked cache objects
// are 0444) so the output can be removed.
func makeWritable(abs string) error {
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil || !fi.IsDir() {
		return err
	}
	return filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}
