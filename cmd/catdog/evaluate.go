//go:build !catdog_light

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
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
			modelDirFlag(),
			&cli.StringFlag{Name: "data", Required: true, Usage: "labelled photo folder, or a prepared folder", EnvVars: []string{"CATDOG_EVAL_DATA"}},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "split of a prepared folder"},
			&cli.StringFlag{Name: "json", Usage: "also write the evaluation as JSON to this file ('-' = stdout only JSON)"},
			&cli.StringFlag{Name: "server", Usage: "score a running `catdog serve` instead of a local model: POST every photo of the prepared split to `URL`/predict"},
			&cli.StringFlag{Name: "metrics", Usage: "also write accuracy, loss and per-class precision/recall/F1 as a flat JSON file for `dvc metrics`"},
			&cli.IntFlag{Name: "batch-size", Value: 32, Usage: "images per forward pass"},
			threadsFlag(),
		},
		Action: runEvaluate,
	}
}

func runEvaluate(c *cli.Context) error {
	if srv := c.String("server"); srv != "" {
		ev, err := evaluateServed(c.Context, srv, c.String("data"), c.String("split"))
		if err != nil {
			return fmt.Errorf("catdog evaluate --server: %w", err)
		}
		return writeEvaluation(c, ev)
	}
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
	return writeEvaluation(c, res.Evaluation)
}

// writeEvaluation prints the table (or only JSON with --json -) and writes the --json and
// --metrics files.
func writeEvaluation(c *cli.Context, ev train.Evaluation) error {
	b, err := json.MarshalIndent(ev, "", "  ")
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
		if err := writeDVCMetrics(out, ev); err != nil {
			return fmt.Errorf("catdog evaluate: %w", err)
		}
	}
	return ev.WriteTable(c.App.Writer)
}

// evaluateServed sends every photo of a prepared split, as the original file, to a running
// `catdog serve` (POST /predict) and scores the probabilities it answers: what the service
// does to real uploads, compared with the labels.
func evaluateServed(ctx context.Context, server, data, split string) (train.Evaluation, error) {
	prep, err := imageprep.ReadPrepared(data)
	if err != nil {
		return train.Evaluation{}, err
	}
	idx, ok := prep.Splits[split]
	if !ok || len(idx.Paths) != len(idx.Labels) || len(idx.Paths) == 0 {
		return train.Evaluation{}, fmt.Errorf("%s has no split %q with photo paths", data, split)
	}
	client := &http.Client{Timeout: time.Minute}
	probs := make([][]float32, len(idx.Paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, p := range idx.Paths {
		g.Go(func() error {
			if !filepath.IsAbs(p) {
				p = filepath.Join(prep.Source, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(gctx, http.MethodPost, strings.TrimRight(server, "/")+"/predict", bytes.NewReader(b))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", http.DetectContentType(b))
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s: %s", p, resp.Status, strings.TrimSpace(string(body)))
			}
			var pr struct {
				Probabilities map[string]float64 `json:"probabilities"`
			}
			if err := json.Unmarshal(body, &pr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			row := make([]float32, len(prep.Classes))
			for k, cl := range prep.Classes {
				v, ok := pr.Probabilities[cl]
				if !ok {
					return fmt.Errorf("%s: the service answered no probability for class %q", p, cl)
				}
				row[k] = float32(v)
			}
			probs[i] = row
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return train.Evaluation{}, err
	}
	return train.Evaluate(prep.Classes, idx.Labels, probs)
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
