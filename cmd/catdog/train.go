//go:build !catdog_light

package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/train"
)

// trainCommand is `catdog train`: train the CNN on prepared data and write the model directory.
func trainCommand() *cli.Command {
	flags := []cli.Flag{
		paramsFlag("params.yaml"),
		preparedFlag(),
		&cli.StringFlag{Name: "out", Value: "models", Usage: "model directory to write", EnvVars: []string{"CATDOG_MODEL_DIR"}},
		&cli.IntFlag{Name: "epochs", Usage: "override params.yaml epochs", EnvVars: []string{"CATDOG_EPOCHS"}},
		&cli.IntFlag{Name: "batch-size", Usage: "override params.yaml batch_size", EnvVars: []string{"CATDOG_BATCH_SIZE"}},
		&cli.Float64Flag{Name: "lr", Usage: "override params.yaml lr", EnvVars: []string{"CATDOG_LR"}},
		&cli.Int64Flag{Name: "seed", Usage: "override params.yaml seed", EnvVars: []string{"CATDOG_SEED"}},
		threadsFlag(),
		&cli.IntFlag{Name: "input-size", Usage: "override params.yaml input_size (must match prepare --size)", EnvVars: []string{"CATDOG_INPUT_SIZE"}},
		&cli.IntFlag{Name: "limit", Usage: "train on at most this many images (quick runs)", EnvVars: []string{"CATDOG_TRAIN_LIMIT"}},
		&cli.StringFlag{Name: "dvc-file", Usage: "the .dvc file of the raw photos: its md5 is tracked as param data_dvc_md5", EnvVars: []string{"CATDOG_DVC_FILE"}},
		&cli.StringFlag{Name: "name", Value: "catdog", Usage: "model name recorded in model.json", EnvVars: []string{"CATDOG_MODEL_NAME"}},
		quietFlag(),
		deviceFlag(),
	}
	flags = append(flags, trackingFlags()...) // TRACKING: MLflow flags
	return &cli.Command{
		Name:  "train",
		Usage: trainUsage,
		Description: "Reads hyper-parameters from --params (flags override single values), trains with AdamW and a\n" +
			"warm-up + cosine schedule, keeps the epoch with the best validation accuracy and writes\n" +
			"best_model.ot, model.json, metrics.json, confusion_matrix.png, learning_curves.png and the split\n" +
			"manifest into --out. With a tracking URI the run is logged to MLflow.",
		Flags:  flags,
		Action: runTrain,
	}
}

func trainParams(c *cli.Context) (train.Params, error) {
	p := train.DefaultParams()
	if path := c.String("params"); path != "" {
		if _, err := os.Stat(path); err == nil || c.IsSet("params") {
			var err error
			if p, err = train.ReadParams(path); err != nil {
				return p, err
			}
		}
	}
	if c.IsSet("epochs") {
		p.Epochs = c.Int("epochs")
	}
	if c.IsSet("batch-size") {
		p.BatchSize = c.Int("batch-size")
	}
	if c.IsSet("lr") {
		p.LR = c.Float64("lr")
	}
	if c.IsSet("seed") {
		p.Seed = c.Int64("seed")
	}
	if c.IsSet("threads") {
		p.Threads = c.Int("threads")
	}
	if c.IsSet("input-size") {
		p.InputSize = c.Int("input-size")
	}
	return p, p.Validate()
}

// deviceFlag is shared by train and sweep.
func deviceFlag() cli.Flag {
	return &cli.StringFlag{Name: "device", Value: "cpu", Usage: "libtorch device: cpu, cuda, cuda:N or auto (a GPU when libtorch sees one)", EnvVars: []string{"CATDOG_DEVICE"}}
}

// checkDevice rejects a --device libtorch cannot use. Training places its tensors on the
// CPU, so a GPU that libtorch does see is refused too rather than silently unused.
func checkDevice(c *cli.Context) error {
	d, err := model.ParseDevice(c.String("device"))
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	if d.IsCuda() {
		return fmt.Errorf("--device %s: libtorch sees the GPU, but this catdog trains on the CPU only (device placement is not implemented yet); use --device cpu", c.String("device"))
	}
	return nil
}

func runTrain(c *cli.Context) error {
	if err := checkDevice(c); err != nil {
		return cli.Exit(fmt.Sprintf("catdog train: %v", err), 2)
	}
	p, err := trainParams(c)
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog train: %v", err), 2)
	}
	ctx := c.Context
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	opts := train.Options{
		Params: p, DataDir: c.String("data"), OutDir: c.String("out"), Log: log,
		Limit: c.Int("limit"), Name: c.String("name"),
	}
	if !c.Bool("quiet") {
		opts.Progress = newProgress(c.App.ErrWriter, false, sparseLines)
	}
	if f := c.String("dvc-file"); f != "" {
		md5, err := dvcFileMD5(f)
		if err != nil {
			return cli.Exit(fmt.Sprintf("catdog train: --dvc-file: %v", err), 2)
		}
		opts.ExtraParams = map[string]string{"data_dvc_md5": md5, "data_dvc_file": f}
	}
	// TRACKING: start an MLflow run when a tracking URI is configured.
	session, err := startTracking(c)
	if err != nil {
		return fmt.Errorf("catdog train: tracking: %w", err)
	}
	if session != nil {
		opts.Tracker = session
		ds, err := trainingDataset(c.String("dvc-file"), opts.DataDir, opts.Limit)
		if err == nil {
			err = session.LogDataset(ctx, ds)
		}
		if err != nil {
			log.Warn("tracking: the dataset input is not logged", "error", err)
		}
	}
	res, runErr := train.Run(ctx, opts)
	// TRACKING: finish the run (artifacts, registry, alias) or mark it FAILED/KILLED.
	if session != nil {
		acc := 0.0
		if res != nil {
			acc = res.Test.Accuracy
		}
		if err := session.Finish(ctx, opts.OutDir, acc, runErr); err != nil {
			log.Warn("tracking: finishing the run failed", "error", err)
		} else if runErr == nil {
			if err := session.promoteAfterTraining(ctx, opts.DataDir); err != nil {
				return fmt.Errorf("catdog train: %w", err)
			}
		}
	}
	if runErr != nil {
		return fmt.Errorf("catdog train: %w", runErr)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "best epoch %d (validation accuracy %.2f%%); model written to %s\n\n", res.BestEpoch, 100*res.BestVal, res.ModelDir)
	fmt.Fprintln(w, "test split:")
	if err := res.Test.WriteTable(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTEST ACCURACY: %.2f%%\n", 100*res.Test.Accuracy)
	if session != nil {
		fmt.Fprintln(w)
		session.WriteLinks(w)
	}
	return nil
}

// dvcFileMD5 returns the md5 of the single output recorded in a .dvc file.
func dvcFileMD5(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	f, err := dvcfmt.ParseDVCFile(b)
	if err != nil {
		return "", err
	}
	if len(f.Outs) != 1 || f.Outs[0].MD5 == "" {
		return "", fmt.Errorf("%s: want one output with an md5", path)
	}
	return f.Outs[0].MD5, nil
}
