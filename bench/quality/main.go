// Command quality measures a model honestly on two test sets: the test split of a prepared
// folder (the model's own source) and a shifted copy of that same split, built here, that
// imitates photos from another source (another JPEG encoder and qualities, other sizes, other
// crops). The shifted set is derived only from the test split, so it is as unseen as the split.
//
//	go run ./bench/quality shift -data data/prepared -out data/shifted
//	go run ./bench/quality eval  -model models -data data/prepared -shifted data/shifted [-run-id ID]
//
// eval prints one Markdown row (own test, shifted overall, every shift) and, with -run-id and
// MLFLOW_TRACKING_URI, logs the figures to that MLflow run (shifted_accuracy, shifted_<name>_accuracy).
// bench/quality/run.sh does both for a model directory; bench/quality/RESULTS.md holds the results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/train"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: quality shift|eval [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	data := fs.String("data", "data/prepared", "folder written by `catdog prepare`")
	split := fs.String("split", "test", "split the shifted set is derived from / scored on")
	out := fs.String("out", "data/shifted", "shift: folder to write the shifted set to")
	shifted := fs.String("shifted", "data/shifted", "eval: the shifted set written by `quality shift`")
	modelDir := fs.String("model", "models", "eval: model directory")
	runID := fs.String("run-id", "", "eval: MLflow run to log the figures to (needs MLFLOW_TRACKING_URI)")
	jsonOut := fs.String("json", "", "eval: also write the figures as JSON to this file")
	threads := fs.Int("threads", 0, "eval: libtorch threads (0 = one per core)")
	crops := fs.String("tta-crops", "", "eval: override the model's test-time centre crops (comma-separated fractions, 'none' = whole image only)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "shift":
		n, err := buildShifted(ctx, *data, *split, *out, runtime.NumCPU())
		if err != nil {
			return err
		}
		for _, s := range shifts() {
			fmt.Printf("%-16s %d photos  %s\n", s.Name, n, s.Why)
		}
		fmt.Printf("shifted set: %s (%d photos of split %q x %d shifts)\n", *out, n, *split, len(shifts()))
		return nil
	case "eval":
		if *threads > 0 {
			model.SetThreads(*threads)
		} else {
			model.SetThreads(runtime.NumCPU())
		}
		dir := *modelDir
		if *crops != "" {
			var err error
			if dir, err = withCrops(*modelDir, *crops); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		figs, err := evaluate(ctx, dir, *data, *split, *shifted)
		figs.Model = *modelDir
		if *crops != "" {
			figs.Model += " tta_crops=" + *crops
		}
		if err != nil {
			return err
		}
		fmt.Println(figs.markdown())
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(figs, "", "  ")
			if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
				return fmt.Errorf("quality: %w", err)
			}
		}
		if *runID != "" {
			return logFigures(ctx, *runID, figs)
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q (shift or eval)", args[0])
}

// withCrops copies the model directory's weights and model.json, with tta_crops replaced, into a
// temporary directory (the caller removes it): the same weights scored with other views.
func withCrops(dir, crops string) (string, error) {
	info, err := model.ReadInfo(dir)
	if err != nil {
		return "", err
	}
	info.TTACrops = nil
	if crops != "none" {
		for _, f := range strings.Split(crops, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return "", fmt.Errorf("-tta-crops: %w", err)
			}
			info.TTACrops = append(info.TTACrops, v)
		}
	}
	if err := info.Validate(); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "quality-model-")
	if err != nil {
		return "", err
	}
	w, err := os.ReadFile(filepath.Join(dir, model.WeightsFile))
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, model.WeightsFile), w, 0o644)
	}
	if err == nil {
		var b []byte
		if b, err = json.MarshalIndent(info, "", "  "); err == nil {
			err = os.WriteFile(filepath.Join(tmp, model.InfoFile), b, 0o644)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("quality: %w", err)
	}
	return tmp, nil
}

// figures are one model's accuracies.
type figures struct {
	Model    string             `json:"model"`
	Arch     string             `json:"arch"`
	Own      float64            `json:"own_test_accuracy"`
	OwnN     int                `json:"own_test_n"`
	Shifted  float64            `json:"shifted_accuracy"`
	ShiftedN int                `json:"shifted_n"`
	PerShift map[string]float64 `json:"per_shift"`
}

func evaluate(ctx context.Context, modelDir, data, split, shifted string) (figures, error) {
	m, err := model.Load(modelDir)
	if err != nil {
		return figures{}, err
	}
	defer m.Close()
	f := figures{Model: modelDir, Arch: m.Info().Arch.Name, PerShift: map[string]float64{}}
	own, err := train.EvaluateModel(ctx, m, train.EvalOptions{Data: data, Split: split, Limits: imageprep.DefaultLimits()})
	if err != nil {
		return f, err
	}
	f.Own, f.OwnN = own.Evaluation.Accuracy, own.Evaluation.N
	correct := 0.0
	for _, s := range shifts() {
		dir := filepath.Join(shifted, s.Name)
		r, err := train.EvaluateModel(ctx, m, train.EvalOptions{Data: dir, Limits: imageprep.DefaultLimits()})
		if err != nil {
			return f, fmt.Errorf("%s (run `quality shift` first): %w", dir, err)
		}
		if len(r.Skipped) > 0 {
			return f, fmt.Errorf("%s: %d photos skipped (first: %s)", dir, len(r.Skipped), r.Skipped[0].Detail)
		}
		f.PerShift[s.Name] = r.Evaluation.Accuracy
		f.ShiftedN += r.Evaluation.N
		correct += r.Evaluation.Accuracy * float64(r.Evaluation.N)
	}
	f.Shifted = correct / float64(f.ShiftedN)
	return f, nil
}

// markdown is a header and one row: own test, shifted overall, every shift.
func (f figures) markdown() string {
	var h, sep, row strings.Builder
	h.WriteString("| model | arch | own test | shifted |")
	sep.WriteString("|---|---|---|---|")
	fmt.Fprintf(&row, "| %s | %s | %.1f %% (n=%d) | %.1f %% (n=%d) |", f.Model, f.Arch, 100*f.Own, f.OwnN, 100*f.Shifted, f.ShiftedN)
	for _, s := range shifts() {
		fmt.Fprintf(&h, " %s |", s.Name)
		sep.WriteString("---|")
		fmt.Fprintf(&row, " %.1f |", 100*f.PerShift[s.Name])
	}
	return h.String() + "\n" + sep.String() + "\n" + row.String()
}

func logFigures(ctx context.Context, runID string, f figures) error {
	c, err := mlflowclient.NewFromEnv(os.Getenv("MLFLOW_TRACKING_URI"))
	if err != nil {
		return fmt.Errorf("quality: %w", err)
	}
	metrics := map[string]float64{"own_test_accuracy": f.Own, "shifted_accuracy": f.Shifted}
	for k, v := range f.PerShift {
		metrics["shifted_"+strings.ReplaceAll(k, "-", "_")+"_accuracy"] = v
	}
	for k, v := range metrics {
		if err := c.LogMetric(ctx, runID, k, v, 0); err != nil {
			return fmt.Errorf("quality: log %s: %w", k, err)
		}
	}
	return nil
}
