//go:build !catdog_light

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// serveOptions are the flags of `catdog serve`, read by serveOptionsFrom.
type serveOptions struct {
	Model           string        // model directory or models:/NAME@ALIAS | models:/NAME/VERSION
	DownloadDir     string        // where a models:/ model is downloaded ("" = temporary, removed at exit)
	ModelVersion    string        // version reported for a model directory
	Addr            string        // listen address
	Workers         int           // OS-thread-locked model workers
	Threads         int           // libtorch intra-op threads (0 = libtorch default)
	Queue           int           // bounded queue in front of the workers
	MaxBatch        int           // dynamic micro-batching: images per forward pass
	MaxWait         time.Duration // dynamic micro-batching: wait for more requests
	MaxBodyBytes    int64         // request body limit
	MaxPixels       int64         // decoded pixel limit, checked from the header
	MaxBatchFiles   int           // files per /predict/batch
	PredictTimeout  time.Duration // per-request wait for a worker
	DrainDelay      time.Duration // /ready 503 before the listener closes, after SIGTERM
	ShutdownTimeout time.Duration // wait for in-flight requests
	LogLevel        string
	Params          string // params.yaml whose drift: section configures the drift monitor ("" = defaults)
	DriftProfile    string // reference profile ("" = drift_profile.json of the model directory)
	NoDrift         bool   // turn the drift monitor off
}

// serveCommand is `catdog serve`: the prediction HTTP service (package inference).
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: serveUsage,
		Description: "Loads a model directory (catdog train output) or a registered model (models:/NAME@ALIAS,\n" +
			"downloaded through the MLflow tracking server), then answers POST /predict, POST /predict/batch,\n" +
			"GET /health, /ready, /metrics, /version and /openapi.json. SIGTERM drains in-flight requests.",
		Flags: []cli.Flag{
			modelRefFlag(),
			trackingURIFlag(),
			&cli.StringFlag{Name: "download-dir", Usage: "keep a models:/ download in this directory (default: a temporary directory removed at exit)"},
			&cli.StringFlag{Name: "model-version", Value: "local", Usage: "version reported for a model directory (models:/ URIs report the registry version)"},
			&cli.StringFlag{Name: "addr", Value: ":8080", Usage: "listen address", EnvVars: []string{"CATDOG_ADDR"}},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "model workers, each on its own locked OS thread"},
			threadsFlag(),
			&cli.IntFlag{Name: "queue", Value: 64, Usage: "requests waiting for a worker before 503 + Retry-After"},
			&cli.IntFlag{Name: "max-batch", Value: 1, Usage: "dynamic micro-batching: most images per forward pass (1: off)"},
			&cli.DurationFlag{Name: "max-wait", Value: 2 * time.Millisecond, Usage: "dynamic micro-batching: how long a worker waits for more requests"},
			&cli.Int64Flag{Name: "max-body-bytes", Value: 10 << 20, Usage: "request body limit (413 above)"},
			&cli.Int64Flag{Name: "max-pixels", Value: imageprep.DefaultLimits().MaxPixels, Usage: "image width*height limit, checked from the header before decoding (413 above)"},
			&cli.IntFlag{Name: "max-batch-files", Value: 16, Usage: "files per POST /predict/batch"},
			&cli.DurationFlag{Name: "predict-timeout", Value: 10 * time.Second, Usage: "longest wait for a model worker (503 after)"},
			&cli.DurationFlag{Name: "drain-delay", Value: 5 * time.Second, Usage: "after SIGTERM, how long /ready answers 503 before the listener closes"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "after SIGTERM, longest wait for in-flight requests"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error (JSON logs on stderr)"},
			paramsFlag(""),
			&cli.StringFlag{Name: "drift-profile", Usage: "training reference for input drift (default: " + modeldir.DriftProfile + " in the model directory)", EnvVars: []string{"CATDOG_DRIFT_PROFILE"}},
			&cli.BoolFlag{Name: "no-drift", Usage: "do not monitor input drift", EnvVars: []string{"CATDOG_NO_DRIFT"}},
		},
		Action: func(c *cli.Context) error { return runServe(c, serveOptionsFrom(c)) },
	}
}

// serveOptionsFrom reads the flags of `catdog serve`.
func serveOptionsFrom(c *cli.Context) serveOptions {
	return serveOptions{
		Model:           c.String("model"),
		DownloadDir:     c.String("download-dir"),
		ModelVersion:    c.String("model-version"),
		Addr:            c.String("addr"),
		Workers:         c.Int("workers"),
		Threads:         c.Int("threads"),
		Queue:           c.Int("queue"),
		MaxBatch:        c.Int("max-batch"),
		MaxWait:         c.Duration("max-wait"),
		MaxBodyBytes:    c.Int64("max-body-bytes"),
		MaxPixels:       c.Int64("max-pixels"),
		MaxBatchFiles:   c.Int("max-batch-files"),
		PredictTimeout:  c.Duration("predict-timeout"),
		DrainDelay:      c.Duration("drain-delay"),
		ShutdownTimeout: c.Duration("shutdown-timeout"),
		LogLevel:        c.String("log-level"),
		Params:          c.String("params"),
		DriftProfile:    c.String("drift-profile"),
		NoDrift:         c.Bool("no-drift"),
	}
}

func runServe(c *cli.Context, o serveOptions) error {
	start := time.Now()
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return cli.Exit(fmt.Sprintf("catdog serve: --log-level: %v", err), 2)
	}
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	ctx := c.Context

	// Listen first: /health answers and /ready says "loading" while the model loads.
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("catdog serve: %w", err)
	}
	swap := inference.NewSwap(inference.Loading())
	srv := inference.NewServer(o.Addr, swap, log)
	var svc atomic.Pointer[inference.Service]
	runCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	served := make(chan error, 1)
	go func() {
		served <- inference.Run(runCtx, srv, l, inference.DrainOptions{
			Drain: func() {
				log.Info("draining", "delay", o.DrainDelay.String())
				if s := svc.Load(); s != nil {
					s.Drain()
				}
			},
			Delay:   o.DrainDelay,
			Timeout: o.ShutdownTimeout,
		})
	}()
	log.Info("listening", "addr", l.Addr().String())

	m, mi, dir, cleanup, err := loadServeModel(ctx, c, o, log)
	if err != nil {
		stopServer()
		<-served
		return fmt.Errorf("catdog serve: %w", err)
	}
	defer cleanup()
	defer m.Close()

	driftOpt, err := serveDrift(o, dir, log)
	if err != nil {
		stopServer()
		<-served
		return cli.Exit(fmt.Sprintf("catdog serve: %v", err), 2)
	}
	reg := inference.NewRegistry()
	s, err := inference.New(m, reg, log, driftOpt,
		inference.WithModelInfo(mi),
		inference.WithLimits(imageprep.Limits{MaxBytes: o.MaxBodyBytes, MaxPixels: o.MaxPixels}),
		inference.WithMaxBodyBytes(o.MaxBodyBytes),
		inference.WithWorkers(o.Workers),
		inference.WithQueueSize(o.Queue),
		inference.WithBatching(o.MaxBatch, o.MaxWait),
		inference.WithMaxBatchFiles(o.MaxBatchFiles),
		inference.WithPredictTimeout(o.PredictTimeout),
	)
	if err != nil {
		stopServer()
		<-served
		return cli.Exit(fmt.Sprintf("catdog serve: %v", err), 2)
	}
	defer s.Close()
	svc.Store(s)
	if err := s.WaitReady(ctx); err != nil && !errors.Is(err, context.Canceled) {
		stopServer()
		<-served
		return fmt.Errorf("catdog serve: %w", err)
	}
	if ctx.Err() == nil {
		swap.Set(s)
		log.Info("ready", "model", mi.Name, "version", mi.Version, "run_id", mi.RunID,
			"input_size", m.Spec().Size, "threads", model.Threads(), "workers", o.Workers,
			"max_batch", o.MaxBatch, "startup_ms", time.Since(start).Milliseconds())
	}
	err = <-served
	if err != nil {
		return fmt.Errorf("catdog serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveDrift returns the drift option of the service: the reference profile (--drift-profile,
// or the model directory's) and the drift: section of --params. A model without a profile is
// served without drift monitoring (logged); a bad profile or config is an error.
func serveDrift(o serveOptions, modelDir string, log *slog.Logger) (inference.Option, error) {
	if o.NoDrift {
		log.Info("drift monitoring off (--no-drift)")
		return inference.WithDrift(nil, drift.MonitorConfig{}), nil
	}
	cfg, err := readDriftParams(o.Params)
	if err != nil {
		return nil, err
	}
	path := o.DriftProfile
	if path == "" {
		path = filepath.Join(modelDir, modeldir.DriftProfile)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && o.DriftProfile == "" {
		log.Warn("no drift profile in the model directory: drift monitoring off (train with this catdog to get one)", "path", path)
		return inference.WithDrift(nil, cfg), nil
	}
	if err != nil {
		return nil, fmt.Errorf("--drift-profile: %w", err)
	}
	defer f.Close()
	p, err := drift.DecodeProfile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	eff := cfg.WithDefaults()
	log.Info("drift monitoring", "profile", path, "reference_rows", p.Rows, "window_size", eff.WindowSize,
		"window_max_age", eff.WindowMaxAge.String(), "every_requests", eff.EveryRequests, "every", eff.Every.String())
	return inference.WithDrift(p, cfg), nil
}

// loadServeModel loads the model named by --model: a directory, or a models:/ URI downloaded
// through the MLflow tracking server. cleanup removes a temporary download.
func loadServeModel(ctx context.Context, c *cli.Context, o serveOptions, log *slog.Logger) (*model.Model, inference.ModelInfo, string, func(), error) {
	cleanup := func() {}
	dir := o.Model
	mi := inference.ModelInfo{Version: o.ModelVersion, Source: o.Model}
	if strings.HasPrefix(o.Model, "models:/") {
		cl, err := newMLflowClient(c)
		if err != nil {
			return nil, mi, "", cleanup, fmt.Errorf("%s needs an MLflow tracking server (--tracking-uri or MLFLOW_TRACKING_URI): %w", o.Model, err)
		}
		dir = o.DownloadDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "catdog-serve-model-")
			if err != nil {
				return nil, mi, "", cleanup, err
			}
			dir, cleanup = tmp, func() { _ = os.RemoveAll(tmp) }
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, mi, "", cleanup, err
		}
		t := time.Now()
		mv, files, err := cl.DownloadModel(ctx, o.Model, dir)
		if err != nil {
			cleanup()
			return nil, mi, "", func() {}, fmt.Errorf("download %s: %w", o.Model, err)
		}
		mi.Name, mi.Version, mi.RunID = mv.Name, mv.Version, mv.RunID
		log.Info("model downloaded", "uri", o.Model, "name", mv.Name, "version", mv.Version, "run_id", mv.RunID,
			"files", len(files), "ms", time.Since(t).Milliseconds())
	}
	model.SetThreads(o.Threads)
	t := time.Now()
	m, err := model.Load(dir)
	if err != nil {
		cleanup()
		return nil, mi, "", func() {}, err
	}
	info := m.Info()
	if mi.Name == "" {
		mi.Name = info.Name
	}
	mi.Classes = info.Classes
	log.Info("model loaded", "dir", dir, "name", info.Name, "arch", info.Arch.Name, "input_size", info.InputSize,
		"classes", info.Classes, "ms", time.Since(t).Milliseconds())
	return m, mi, dir, cleanup, nil
}
