package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/imageprep"
)

// prepareCommand is `catdog prepare`: validate, resize, split and cache the photos.
func prepareCommand() *cli.Command {
	lim := imageprep.DefaultLimits()
	return &cli.Command{
		Name:  "prepare",
		Usage: "validate, resize, split (stratified, seeded) and cache the photos for training",
		Description: "Reads a Kaggle PetImages folder (Cat/ Dog/) or flat cat.N.jpg/dog.N.jpg files, skips and lists\n" +
			"bad files with a reason, resizes the good ones to SIZE×SIZE and writes manifest.csv, rejected.csv,\n" +
			"{train,val,test}.u8 and prepared.json into --out. A second run with the same inputs and settings\n" +
			"reuses the cache.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Value: "../shared/data/petimages-dev", Usage: "photo folder (Cat/ Dog/ or cat.N.jpg/dog.N.jpg)", EnvVars: []string{"CATDOG_PREPARE_DATA", "CATDOG_RAW_DATA"}},
			&cli.StringFlag{Name: "out", Value: "data/prepared", Usage: "output folder for the manifest and cached splits", EnvVars: []string{"CATDOG_PREPARE_OUT", "CATDOG_PREPARED"}},
			&cli.IntFlag{Name: "size", Value: imageprep.DefaultSpec().Size, Usage: "side of the square cached images", EnvVars: []string{"CATDOG_PREPARE_SIZE", "CATDOG_IMAGE_SIZE"}},
			&cli.Int64Flag{Name: "seed", Value: 42, Usage: "seed of the stratified split", EnvVars: []string{"CATDOG_PREPARE_SEED", "CATDOG_SEED"}},
			&cli.StringFlag{Name: "split", Value: "0.8,0.1,0.1", Usage: "train,val,test fractions", EnvVars: []string{"CATDOG_PREPARE_SPLIT"}},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "decoding goroutines", EnvVars: []string{"CATDOG_PREPARE_WORKERS", "CATDOG_WORKERS"}},
			&cli.Int64Flag{Name: "max-pixels", Value: lim.MaxPixels, Usage: "largest width×height accepted (checked from the header before decoding)", EnvVars: []string{"CATDOG_MAX_PIXELS"}},
			&cli.Int64Flag{Name: "max-bytes", Value: lim.MaxBytes, Usage: "largest file accepted, in bytes", EnvVars: []string{"CATDOG_MAX_BYTES"}},
			&cli.IntFlag{Name: "max-files", Value: 1_000_000, Usage: "largest number of files in --data", EnvVars: []string{"CATDOG_MAX_FILES"}},
			&cli.BoolFlag{Name: "force", Usage: "decode again even when the cache matches", EnvVars: []string{"CATDOG_PREPARE_FORCE"}},
			&cli.BoolFlag{Name: "check", Usage: "only validate every file under --data and print one line each (no labels needed, nothing written)"},
			quietFlag(),
		},
		Action: runPrepare,
	}
}

func runPrepare(c *cli.Context) error {
	fractions, err := parseSplitFractions(c.String("split"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog prepare: --split: %v", err), 2)
	}
	opts := imageprep.PrepareOptions{
		Source:    c.String("data"),
		Out:       c.String("out"),
		Size:      c.Int("size"),
		Seed:      c.Int64("seed"),
		Fractions: fractions,
		Workers:   c.Int("workers"),
		Limits:    imageprep.Limits{MaxBytes: c.Int64("max-bytes"), MaxPixels: c.Int64("max-pixels")},
		MaxFiles:  c.Int("max-files"),
		Force:     c.Bool("force"),
	}
	if st, err := os.Stat(opts.Source); err != nil || !st.IsDir() {
		return cli.Exit(fmt.Sprintf("catdog prepare: --data %s is not a folder", opts.Source), 2)
	}
	if c.Bool("check") {
		return runPrepareCheck(c, opts)
	}
	opts.Progress = countProgress(newProgress(c.App.ErrWriter, c.Bool("quiet"), itemLines), "decoding")
	rep, err := imageprep.Prepare(c.Context, opts)
	if err != nil {
		return err
	}
	if err := rep.WriteText(c.App.Writer); err != nil {
		return err
	}
	if len(rep.Samples) == 0 {
		return cli.Exit("catdog prepare: no usable images", 1)
	}
	return nil
}

// runPrepareCheck prints one line per file: "ok PATH FORMAT WxH MODEL" or "rejected PATH: REASON: DETAIL".
func runPrepareCheck(c *cli.Context, opts imageprep.PrepareOptions) error {
	checks, err := imageprep.Check(c.Context, opts.Source, opts.Limits, opts.Workers)
	if err != nil {
		return fmt.Errorf("--check: %w", err)
	}
	var b strings.Builder
	bad := 0
	for _, fc := range checks {
		if fc.Err != nil {
			bad++
			fmt.Fprintf(&b, "rejected %s: %s\n", fc.Path, strings.Join(strings.Fields(fc.Err.Error()), " "))
			continue
		}
		conv := ""
		if fc.Model != "YCbCr" && fc.Model != "RGBA" {
			conv = " (converted to RGB)"
		}
		fmt.Fprintf(&b, "ok       %s: %s %dx%d %s%s\n", fc.Path, fc.Format, fc.Width, fc.Height, fc.Model, conv)
	}
	fmt.Fprintf(&b, "%d files: %d usable, %d rejected\n", len(checks), len(checks)-bad, bad)
	_, err = io.WriteString(c.App.Writer, b.String())
	return err
}

// parseSplitFractions reads "0.8,0.1,0.1".
func parseSplitFractions(s string) ([3]float64, error) {
	var f [3]float64
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return f, errors.New("want three comma-separated fractions (train,val,test)")
	}
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return f, err
		}
		f[i] = v
	}
	return f, nil
}
