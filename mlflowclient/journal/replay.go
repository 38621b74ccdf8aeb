package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/catdog-mlops/catdog/mlflowclient"
)

// ErrOffline wraps the error that stopped a replay because the server could not be reached
// or answered with a transient failure; the remaining entries stay pending.
var ErrOffline = errors.New("journal: tracking server unavailable, entries stay spooled")

// Result summarises one Replay.
type Result struct {
	Applied int       // entries applied now
	Pending int       // entries still pending (server unavailable)
	Skipped []Skipped // entries the server rejected permanently during this replay
}

// Replay applies the pending entries in order with c. It stops at the first transient
// failure (the error wraps ErrOffline) and skips entries the server rejects permanently
// (recorded in State().Skipped and in the result).
func (j *Journal) Replay(ctx context.Context, c *mlflowclient.Client) (Result, error) {
	var res Result
	pending, err := j.Pending()
	if err != nil {
		return res, err
	}
	for i, e := range pending {
		err := j.apply(ctx, c, e)
		if err != nil && transient(ctx, err) {
			res.Pending = len(pending) - i
			return res, fmt.Errorf("%w: %w", ErrOffline, err)
		}
		j.mu.Lock()
		if err != nil {
			s := Skipped{Seq: e.Seq, Op: e.Op, Error: err.Error()}
			j.state.Skipped = append(j.state.Skipped, s)
			res.Skipped = append(res.Skipped, s)
		} else {
			res.Applied++
		}
		j.state.Applied = e.Seq
		serr := j.saveState()
		j.mu.Unlock()
		if serr != nil {
			return res, serr
		}
	}
	return res, nil
}

// transient says whether err may go away by itself (network, 408/429/5xx, cancellation).
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var verr *mlflowclient.ValidationError
	if errors.As(err, &verr) || errors.Is(err, os.ErrNotExist) || errors.Is(err, mlflowclient.ErrExperimentDeleted) || errors.Is(err, mlflowclient.ErrNotProxied) {
		return false
	}
	var apiErr *mlflowclient.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	return true // transport errors
}

func (j *Journal) apply(ctx context.Context, c *mlflowclient.Client, e Entry) error {
	st := j.State()
	if e.Op != OpCreateRun && st.RunID == "" {
		return fmt.Errorf("journal: %s entry %d: the run was never created", e.Op, e.Seq)
	}
	switch e.Op {
	case OpCreateRun:
		if st.RunID != "" {
			return nil // created in an earlier replay
		}
		cr := e.CreateRun
		exp, err := c.GetOrCreateExperiment(ctx, cr.Experiment, false)
		if err != nil {
			return err
		}
		if err := c.EnsureExperimentTags(ctx, exp, cr.ExperimentTags); err != nil {
			return err
		}
		run, err := c.CreateRun(ctx, mlflowclient.CreateRunRequest{ExperimentID: exp.ID, RunName: cr.RunName,
			StartTime: time.UnixMilli(cr.StartTime), GitCommit: cr.GitCommit, Tags: cr.Tags})
		if err != nil {
			return err
		}
		return j.SetRun(run.Info.RunID, exp.ID, run.Info.ArtifactURI)
	case OpLogBatch:
		return c.LogBatch(ctx, st.RunID, *e.Batch)
	case OpUpload:
		root, err := c.ResolveArtifactURI(st.ArtifactURI)
		if err != nil {
			return err
		}
		fi, err := os.Stat(e.Upload.LocalPath)
		if err != nil {
			return fmt.Errorf("journal: upload: %w", err)
		}
		if fi.IsDir() {
			return c.UploadDir(ctx, root, e.Upload.LocalPath, e.Upload.ArtifactPath)
		}
		return c.UploadFile(ctx, root, e.Upload.LocalPath, e.Upload.ArtifactPath)
	case OpRegister:
		return j.register(ctx, c, st, e.Register)
	case OpMLmodel:
		return j.uploadMLmodel(ctx, c, st, e.MLmodel)
	case OpLogInputs:
		return c.LogInputs(ctx, st.RunID, e.Inputs.Datasets)
	case OpLoggedModel:
		return j.logModel(ctx, c, st, e.Model)
	case OpTerminate:
		if _, err := c.UpdateRun(ctx, st.RunID, e.Terminate.Status, time.UnixMilli(e.Terminate.EndTime)); err != nil {
			return err
		}
		j.mu.Lock()
		j.state.Terminated = e.Terminate.Status
		j.mu.Unlock()
		return nil
	}
	return fmt.Errorf("journal: unknown op %q (entry %d)", e.Op, e.Seq)
}

// register creates the model version unless one from this run exists (a replay after a
// lost answer), then promotes the alias when the metric is better.
func (j *Journal) register(ctx context.Context, c *mlflowclient.Client, st State, r *Register) error {
	if err := c.EnsureRegisteredModel(ctx, r.Model); err != nil {
		return err
	}
	source := "models:/" + st.ModelID
	if st.ModelID == "" {
		root, err := c.ResolveArtifactURI(st.ArtifactURI)
		if err != nil {
			return err
		}
		source = root.Join(r.ArtifactPath).String()
	}
	var mv *mlflowclient.ModelVersion
	vs, _, err := c.SearchModelVersions(ctx, mlflowclient.ModelVersionQuery{Filter: fmt.Sprintf("run_id='%s'", st.RunID)})
	if err != nil {
		return err
	}
	for i := range vs {
		if vs[i].Name == r.Model && strings.TrimRight(vs[i].Source, "/") == source {
			mv = &vs[i]
		}
	}
	switch {
	case mv != nil:
	case st.ModelID != "":
		if mv, err = c.CreateModelVersionFromLoggedModel(ctx, r.Model, st.ModelID); err != nil {
			return err
		}
	default:
		if mv, err = c.CreateModelVersion(ctx, r.Model, source, st.RunID); err != nil {
			return err
		}
	}
	j.mu.Lock()
	j.state.Version = mv.Version
	j.mu.Unlock()
	if r.Alias == "" {
		return nil
	}
	p, err := c.PromoteIfBetter(ctx, r.Model, r.Alias, mv.Version, r.MetricKey, float64(r.Value))
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.state.Promoted = p.Promoted || p.Previous == mv.Version
	j.mu.Unlock()
	return nil
}

// logModel applies an OpLoggedModel entry; every step is idempotent (see LoggedModel).
func (j *Journal) logModel(ctx context.Context, c *mlflowclient.Client, st State, m *LoggedModel) error {
	if st.ModelID == "" {
		lm, err := c.FindLoggedModel(ctx, st.ExperimentID, st.RunID, m.Name) // created before a crash?
		if errors.Is(err, mlflowclient.ErrNotFound) {
			lm, err = c.CreateLoggedModel(ctx, mlflowclient.CreateLoggedModelRequest{ExperimentID: st.ExperimentID,
				Name: m.Name, ModelType: m.ModelType, SourceRunID: st.RunID, Params: m.Params, Tags: m.Tags})
		}
		if err != nil {
			return err
		}
		j.mu.Lock()
		j.state.ModelID, j.state.ModelURI = lm.Info.ModelID, lm.Info.ArtifactURI
		err = j.saveState()
		j.mu.Unlock()
		if err != nil {
			return err
		}
		st = j.State()
	}
	if err := c.LogOutputs(ctx, st.RunID, []mlflowclient.ModelIO{{ModelID: st.ModelID, Step: m.Step}}); err != nil {
		return err
	}
	root, err := c.ResolveArtifactURI(st.ModelURI)
	if err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := c.UploadFile(ctx, root, f, filepath.Base(f)); err != nil {
			return err
		}
	}
	b, err := mlflowclient.MLmodel{
		ArtifactPath:   st.ModelURI,
		Flavors:        map[string]map[string]any{m.Flavor: m.FlavorConfig},
		ModelSizeBytes: m.ModelSizeBytes,
		ModelUUID:      st.ModelID,
		ModelID:        st.ModelID,
		RunID:          st.RunID,
		UTCTimeCreated: mlflowclient.MLmodelTime(time.UnixMilli(m.Created)),
	}.Marshal()
	if err != nil {
		return err
	}
	if err := j.uploadBytes(ctx, c, root, "MLmodel", b); err != nil {
		return err
	}
	if err := c.LinkModelMetrics(ctx, st.RunID, st.ModelID, m.Step, m.Dataset); err != nil {
		return err
	}
	_, err = c.FinalizeLoggedModel(ctx, st.ModelID, mlflowclient.LoggedModelReady)
	return err
}

// uploadBytes uploads b as the file name below root through a file owned by the journal.
func (j *Journal) uploadBytes(ctx context.Context, c *mlflowclient.Client, root mlflowclient.ArtifactRoot, name string, b []byte) error {
	if err := os.MkdirAll(j.filesDir(), 0o755); err != nil {
		return err
	}
	// A scratch file for UploadFile (which streams from a path), removed after the upload: no
	// other process reads it, so it is not written through internal/atomicfile.
	tmp, err := os.CreateTemp(j.filesDir(), name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return err
	}
	return c.UploadFile(ctx, root, tmp.Name(), name)
}

func (j *Journal) uploadMLmodel(ctx context.Context, c *mlflowclient.Client, st State, m *MLmodel) error {
	root, err := c.ResolveArtifactURI(st.ArtifactURI)
	if err != nil {
		return err
	}
	dir := root.Join(m.ArtifactPath)
	b, err := mlflowclient.MLmodel{
		ArtifactPath:   st.ArtifactURI + "/" + m.ArtifactPath,
		Flavors:        map[string]map[string]any{m.Flavor: m.FlavorConfig},
		ModelSizeBytes: m.ModelSizeBytes,
		ModelUUID:      m.ModelUUID,
		RunID:          st.RunID,
		UTCTimeCreated: mlflowclient.MLmodelTime(time.UnixMilli(m.Created)),
		Metadata:       m.Metadata,
	}.Marshal()
	if err != nil {
		return err
	}
	return j.uploadBytes(ctx, c, dir, "MLmodel", b)
}

// SyncResult is the outcome of syncing one journal file.
type SyncResult struct {
	Path    string
	RunID   string
	Result  Result
	Removed bool  // fully applied and terminated: the journal was deleted
	Err     error // ErrLocked when a running process holds it, ErrOffline, ...
}

// Sync replays every journal in dir, oldest first, and deletes those that are complete.
// Journals held by a running process are left alone (their Err matches ErrLocked).
func Sync(ctx context.Context, c *mlflowclient.Client, dir string) ([]SyncResult, error) {
	paths, err := List(dir)
	if err != nil {
		return nil, err
	}
	var out []SyncResult
	for _, p := range paths {
		r := SyncResult{Path: p}
		j, err := Open(p)
		if err != nil {
			r.Err = err
			out = append(out, r)
			continue
		}
		r.Result, r.Err = j.Replay(ctx, c)
		r.RunID = j.State().RunID
		if r.Err == nil && j.Done() {
			r.Err = j.Remove()
			r.Removed = r.Err == nil
		} else {
			j.Close()
		}
		out = append(out, r)
		if errors.Is(r.Err, ErrOffline) {
			break // the server is down: the others would fail the same way
		}
	}
	return out, nil
}
