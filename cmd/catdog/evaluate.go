//go:build !catdog_light

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/train"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// evaluateCommand is `catdog evaluate`: score a model directory on labelled photos.
func evaluateCommand() *cli.Command {
	return &cli.Command{
		Name:  "evaluate",
		Usage: evaluateUsage,
		Description: "--data is a folder of photos labelled by layout (Cat/ Dog/ folders or cat.N.jpg/dog.N.jpg) or a\n" +
			"folder written by `catdog prepare` (then --split picks the split). Photos go through the same\n" +
			"preprocessing as `catdog serve`. Unreadable files are listed with their reason and skipped.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Value: "models", Usage: "model directory", EnvVars: []string{"CATDOG_MODEL_DIR"}},
			&cli.StringFlag{Name: "data", Required: true, Usage: "labelled photo folder, or a prepared folder", EnvVars: []string{"CATDOG_EVAL_DATA"}},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "split of a prepared folder"},
			&cli.StringFlag{Name: "json", Usage: "also write the evaluation as JSON to this file ('-' = stdout only JSON)"},
			&cli.StringFlag{Name: "metrics", Usage: "also write accuracy, loss and per-class precision/recall/F1 as a flat JSON file for `dvc metrics`"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per forward pass"},
			&cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0 = one per core)", EnvVars: []string{"CATDOG_THREADS"}},
		},
		Action: runEvaluate,
	}
}

func runEvaluate(c *cli.Context) error {
	model.SetThreads(c.Int("threads"))
	m, err := model.Load(c.String("model"))
	if err != nil {
		return fmt.Errorf("catdog evaluate: %w", err)
	}
	defer m.Close()
	res, err := train.EvaluateModel(c.Context, m, train.EvalOptions{
		Data: c.String("data"), Split: c.String("split"), BatchSize: c.Int("batch-size"), Limits: imageprep.DefaultLimits(),
	})
	if err != nil {
		return fmt.Errorf("catdog evaluate: %w", err)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(c.App.ErrWriter, "skipped %s: %s: %s\n", s.Path, s.Reason, s.Detail)
	}
	b, err := json.MarshalIndent(res.Evaluation, "", "  ")
	if err != nil {
		return err
	}
	switch out := c.String("json"); out {
	case "-":
		_, err = fmt.Fprintf(c.App.Writer, "%s\n", b)
		return err
	case "":
	default:
		if err := atomicfile.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("catdog evaluate: %w", err)
		}
	}
	if out := c.String("metrics"); out != "" {
		if err := writeDVCMetrics(out, res.Evaluation); err != nil {
			return fmt.Errorf("catdog evaluate: %w", err)
		}
	}
	return res.Evaluation.WriteTable(c.App.Writer)
}

// writeDVCMetrics writes e as the nested-mapping JSON `dvc metrics show` tabulates:
// accuracy, loss, n and one {precision, recall, f1, support} object per class.
func writeDVCMetrics(path string, e train.Evaluation) error {
	m := map[string]any{"accuracy": e.Accuracy, "loss": e.Loss, "n": e.N}
	for _, pc := range e.PerClass {
		m[pc.Class] = map[string]any{"precision": pc.Precision, "recall": pc.Recall, "f1": pc.F1, "support": pc.Support}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
