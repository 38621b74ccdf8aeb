package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/driftreport"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// driftCommand is `catdog drift`: input drift against the training reference.
func driftCommand() *cli.Command {
	return &cli.Command{
		Name:  "drift",
		Usage: "input drift of photos against a model's training reference (Evidently's DataDriftPreset rules)",
		Subcommands: []*cli.Command{{
			Name:  "report",
			Usage: "compare a folder of photos (or a CSV of feature rows) with the model's drift profile; write JSON + HTML",
			Description: "Computes the per-image features of every photo below --data (decoded and resized to the model's\n" +
				"input size exactly as serving does), compares them feature by feature with the training reference\n" +
				"in the model's " + modeldir.DriftProfile + " and writes " + driftreport.JSONFile + ", " + driftreport.HTMLFile + " and\n" +
				driftreport.PlotDir + "/*.png into --out. --data may also be a CSV file whose header names the features.",
			Flags: []cli.Flag{
				modelRefFlag(),
				trackingURIFlag(),
				&cli.StringFlag{Name: "data", Required: true, Usage: "folder of photos (JPEG/PNG, searched recursively) or a CSV of feature rows"},
				&cli.StringFlag{Name: "out", Value: "drift-report", Usage: "output folder"},
				paramsFlag(""),
				&cli.StringFlag{Name: "method", Usage: "force one method for every feature (ks, wasserstein, jensenshannon, z, chisquare, psi), over --params; default: Evidently's choice per feature"},
				&cli.Float64Flag{Name: "drift-share", Usage: "share of drifted features at which the dataset drifts, over --params (default 0.5)"},
				&cli.IntFlag{Name: "workers", Usage: "decoding goroutines (default: one per core)"},
				&cli.BoolFlag{Name: "fail-on-drift", Usage: "exit with status 3 when the dataset drifts (for CI)"},
				quietFlag(),
			},
			Action: runDriftReport,
		}},
	}
}

func runDriftReport(c *cli.Context) error {
	ctx := c.Context
	profile, cleanup, err := driftProfileOf(ctx, c, c.String("model"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog drift report: %v", err), 2)
	}
	defer cleanup()
	cfg, err := readDriftParams(c.String("params"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog drift report: --params: %v", err), 2)
	}
	opts := cfg.Options
	if c.IsSet("method") {
		opts.Method = drift.Method(c.String("method"))
	}
	if c.IsSet("drift-share") {
		opts.DriftShare = c.Float64("drift-share")
	}
	if err := opts.Validate(); err != nil {
		return cli.Exit(fmt.Sprintf("catdog drift report: %v", err), 2)
	}
	ref := profile.Table()
	data := c.String("data")
	st, err := os.Stat(data)
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog drift report: --data: %v", err), 2)
	}
	var cur, predCur drift.Table
	var skipped []driftreport.Skipped
	if st.IsDir() {
		cur, skipped, err = folderFeatures(ctx, c, data, profile.InputSize)
	} else {
		cur, predCur, err = readFeatureFile(data, ref, profile.Predictions)
	}
	if err != nil {
		return fmt.Errorf("catdog drift report: %w", err)
	}
	if cur.Rows() == 0 {
		return cli.Exit(fmt.Sprintf("catdog drift report: no usable photos in %s (%d skipped)", data, len(skipped)), 1)
	}
	start := time.Now()
	res, err := drift.Compare(ref, cur, opts)
	if err != nil {
		return fmt.Errorf("catdog drift report: %w", err)
	}
	tables := driftreport.Tables{Ref: ref, Cur: cur}
	var predRes *drift.Result
	if predCur.Rows() > 0 {
		if tables.PredRef, err = profile.Predictions.Table(); err != nil {
			return fmt.Errorf("catdog drift report: %w", err)
		}
		tables.PredCur = predCur
		r, err := drift.Compare(tables.PredRef, predCur, opts)
		if err != nil {
			return fmt.Errorf("catdog drift report: predictions: %w", err)
		}
		predRes = &r
	}
	rep := &driftreport.Report{
		Format: driftreport.Format, Version: driftreport.Version, Created: time.Now().UTC(),
		Model: c.String("model"), Reference: profile.Source, Current: data, Skipped: skipped,
		Options: opts, Result: res, Predictions: predRes, Seconds: time.Since(start).Seconds(),
	}
	out := c.String("out")
	if err := driftreport.WriteTables(out, rep, tables); err != nil {
		return fmt.Errorf("catdog drift report: %w", err)
	}
	if err := driftreport.WriteText(c.App.Writer, rep); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "report: %s  page: %s\n", filepath.Join(out, driftreport.JSONFile), filepath.Join(out, driftreport.HTMLFile))
	if c.Bool("fail-on-drift") && res.DatasetDrift {
		return cli.Exit("catdog drift report: dataset drift", 3)
	}
	return nil
}

// driftProfileOf reads the drift profile of a model directory, or of a models:/ URI downloaded
// through the MLflow tracking server (cleanup removes the download).
func driftProfileOf(ctx context.Context, c *cli.Context, model string) (*drift.Profile, func(), error) {
	cleanup := func() {}
	dir := model
	if strings.HasPrefix(model, "models:/") {
		cl, err := newMLflowClient(c)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%s needs an MLflow tracking server (--tracking-uri or MLFLOW_TRACKING_URI): %w", model, err)
		}
		tmp, err := os.MkdirTemp("", "catdog-drift-model-")
		if err != nil {
			return nil, cleanup, err
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		if _, _, err := cl.DownloadModel(ctx, model, tmp); err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("download %s: %w", model, err)
		}
		dir = tmp
	}
	f, err := os.Open(filepath.Join(dir, modeldir.DriftProfile))
	if err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("%s has no drift profile (train it with this catdog): %w", model, err)
	}
	defer f.Close()
	p, err := drift.DecodeProfile(f)
	if err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("%s: %w", model, err)
	}
	return p, cleanup, nil
}

// folderFeatures computes the features of every photo below dir at the profile's input size.
func folderFeatures(ctx context.Context, c *cli.Context, dir string, size int) (drift.Table, []driftreport.Skipped, error) {
	paths, err := imagedrift.ListImages(dir, 0)
	if err != nil {
		return drift.Table{}, nil, err
	}
	o := imagedrift.FilesOptions{Size: size, Workers: c.Int("workers")}
	o.Progress = countProgress(newProgress(c.App.ErrWriter, c.Bool("quiet"), itemLines), "features")
	rows, skipped, err := imagedrift.Files(ctx, paths, o)
	if err != nil {
		return drift.Table{}, nil, err
	}
	var sk []driftreport.Skipped
	for _, s := range skipped {
		rel, _ := filepath.Rel(dir, s.Path)
		sk = append(sk, driftreport.Skipped{Path: rel, Reason: string(s.Reason)})
	}
	return imagedrift.Table(rows), sk, nil
}

// readFeatureFile reads feature rows from a CSV whose header names (at least) every reference
// feature, or from `catdog serve`'s JSON log (one line per request; lines with a "features"
// object are used, other lines skipped). From a log, when the profile records the validation
// split's predictions (pp), it also returns the prediction table of the lines that carry a
// "class" and a "confidence" (empty otherwise).
func readFeatureFile(path string, ref drift.Table, pp *drift.PredictionProfile) (drift.Table, drift.Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return drift.Table{}, drift.Table{}, err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		t, err := drift.DecodeCSV(bytes.NewReader(b), ref)
		if err != nil {
			return drift.Table{}, drift.Table{}, fmt.Errorf("%s: %w", path, err)
		}
		return t, drift.Table{}, nil
	}
	t := drift.Table{Names: ref.Names, Kinds: ref.Kinds, Columns: make([][]float64, len(ref.Names))}
	pred := drift.Table{Names: drift.PredictionColumns(), Kinds: []drift.Kind{drift.Numerical, drift.Categorical}, Columns: make([][]float64, 2)}
	var classes []string
	if pp != nil {
		classes = pp.Classes()
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			Features   map[string]float64 `json:"features"`
			Class      string             `json:"class"`
			Confidence *float64           `json:"confidence"`
		}
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		if pp != nil && rec.Class != "" && rec.Confidence != nil {
			pred.Columns[0] = append(pred.Columns[0], *rec.Confidence)
			pred.Columns[1] = append(pred.Columns[1], drift.ClassCode(classes, rec.Class))
		}
		if rec.Features == nil {
			continue
		}
		row := make([]float64, len(ref.Names))
		ok := true
		for i, n := range ref.Names {
			v, has := rec.Features[n]
			ok = ok && has
			row[i] = v
		}
		if !ok {
			continue
		}
		for i, v := range row {
			t.Columns[i] = append(t.Columns[i], v)
		}
	}
	if t.Rows() == 0 {
		return drift.Table{}, drift.Table{}, fmt.Errorf("%s: no log line with the features %v (is drift monitoring on in catdog serve?)", path, ref.Names)
	}
	if err := t.Validate(); err != nil {
		return drift.Table{}, drift.Table{}, err
	}
	if err := pred.Validate(); err != nil {
		return drift.Table{}, drift.Table{}, fmt.Errorf("%s: predictions: %w", path, err)
	}
	return t, pred, nil
}

// readDriftParams reads the drift: section of a params.yaml (drift.DecodeParams), or returns
// the defaults for "": the one loader of `catdog serve --params` and `catdog drift report
// --params`.
func readDriftParams(path string) (drift.MonitorConfig, error) {
	if path == "" {
		return drift.MonitorConfig{}.WithDefaults(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return drift.MonitorConfig{}, err
	}
	defer f.Close()
	cfg, err := drift.DecodeParams(f)
	if err != nil {
		return drift.MonitorConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
