//go:build !catdog_light

package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/model"
)

// predictCommand is `catdog predict IMG...`: label and probabilities for each photo.
func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     predictUsage,
		ArgsUsage: "IMG...",
		Flags: []cli.Flag{
			modelDirFlag(),
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
			threadsFlag(),
		},
		Action: runPredict,
	}
}

type prediction struct {
	File          string             `json:"file"`
	Label         string             `json:"label,omitempty"`
	Probabilities map[string]float64 `json:"probabilities,omitempty"`
	Error         string             `json:"error,omitempty"`
}

func runPredict(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.Exit("catdog predict: give at least one image file", 2)
	}
	model.SetThreads(c.Int("threads"))
	m, err := model.Load(c.String("model"))
	if err != nil {
		return fmt.Errorf("catdog predict: %w", err)
	}
	defer m.Close()
	spec, classes := m.Spec(), m.Info().Classes
	failed := 0
	enc := json.NewEncoder(c.App.Writer)
	for _, path := range c.Args().Slice() {
		p := prediction{File: path}
		x, err := readImage(path, spec)
		if err == nil {
			var probs [][]float32
			if probs, err = m.Predict(x, 1); err == nil {
				p.Probabilities = map[string]float64{}
				best := 0
				for i, v := range probs[0] {
					p.Probabilities[classes[i]] = float64(v)
					if v > probs[0][best] {
						best = i
					}
				}
				p.Label = classes[best]
			}
		}
		if err != nil {
			p.Error = err.Error()
			failed++
		}
		switch {
		case c.Bool("json"):
			if err := enc.Encode(p); err != nil {
				return err
			}
		case p.Error != "":
			fmt.Fprintf(c.App.ErrWriter, "%s: error: %s\n", path, p.Error)
		default:
			fmt.Fprintf(c.App.Writer, "%s: %s", path, p.Label)
			for _, cl := range classes {
				fmt.Fprintf(c.App.Writer, "  %s=%.4f", cl, p.Probabilities[cl])
			}
			fmt.Fprintln(c.App.Writer)
		}
	}
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("catdog predict: %d of %d images could not be read", failed, c.NArg()), 1)
	}
	return nil
}

func readImage(path string, spec imageprep.Spec) ([]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return spec.Preprocess(f, imageprep.DefaultLimits())
}
