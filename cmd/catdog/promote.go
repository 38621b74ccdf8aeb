package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/ci/gha"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/mlflowclient"
	"github.com/catdog-mlops/catdog/mlflowclient/promote"
)

// splitParam is the run param train records the prepared split's manifest md5 under.
const splitParam = "dataset_manifest_md5"

// promoteFlags are the flags of `catdog model promote` (train passes its own values).
func promoteFlags() []cli.Flag {
	return []cli.Flag{
		trackingURIFlag(),
		paramsFlag("params.yaml"),
		preparedFlag(),
		&cli.StringFlag{Name: "split", Value: "test", Usage: "split both versions are judged on"},
		&cli.StringFlag{Name: "registered-model", Value: "catdog", Usage: "registered model", EnvVars: []string{"CATDOG_REGISTERED_MODEL"}},
		&cli.StringFlag{Name: "version", Usage: "the challenger version (default: the newest version, or the one of --run-id)"},
		&cli.StringFlag{Name: "run-id", Usage: "the challenger is the version registered from this run"},
		&cli.StringFlag{Name: "champion-alias", Value: "champion", Usage: "alias of the champion", EnvVars: []string{"CATDOG_CHAMPION_ALIAS"}},
		&cli.StringFlag{Name: "challenger-alias", Value: "challenger", Usage: "alias set on a challenger that lost"},
		&cli.BoolFlag{Name: "json", Usage: "print the decision as JSON"},
	}
}

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "promote",
		Usage: "champion/challenger gate: move @champion to a version only if it beats the champion on the same test split",
		Description: "Judges the challenger version and the current @champion on the test split of --data (the manifest\n" +
			"fixes it): a version whose run recorded its metric on that same split (run param\n" +
			"dataset_manifest_md5) is scored by that metric; otherwise it is pulled and re-evaluated on the\n" +
			"split. Metric, margin and direction come from the promote: section of --params. The champion\n" +
			"alias moves only when the challenger is better by more than the margin, else the challenger\n" +
			"alias points at it; the first model becomes champion. The decision (both scores, the split's\n" +
			"md5, the margin, the reason) is recorded as tags on both versions and on the challenger's run.\n" +
			"Concurrent promotions are serialised and the alias is re-read before it moves. In GitHub\n" +
			"Actions the step outputs decision, version, champion and champion_moved are set.",
		Flags:  promoteFlags(),
		Action: runPromote,
	}
}

// gateParams is the promote: section of params.yaml.
type gateParams struct {
	Promote struct {
		Metric         string   `yaml:"metric"`
		Margin         *float64 `yaml:"margin"`
		HigherIsBetter *bool    `yaml:"higher_is_better"`
	} `yaml:"promote"`
}

// readGate reads the promote: section (defaults: test_accuracy, margin 0, higher is better;
// a metric named *loss defaults to lower is better).
func readGate(path string, required bool) (promote.Gate, error) {
	g := promote.Gate{Metric: "test_accuracy", HigherIsBetter: true}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return g, nil
	}
	if err != nil {
		return g, err
	}
	var p gateParams
	if err := yaml.Unmarshal(b, &p); err != nil {
		return g, fmt.Errorf("%s: %w", path, err)
	}
	if p.Promote.Metric != "" {
		g.Metric = p.Promote.Metric
		g.HigherIsBetter = !strings.HasSuffix(g.Metric, "loss")
	}
	if p.Promote.HigherIsBetter != nil {
		g.HigherIsBetter = *p.Promote.HigherIsBetter
	}
	if p.Promote.Margin != nil {
		g.Margin = *p.Promote.Margin
	}
	if g.Margin < 0 || math.IsNaN(g.Margin) || math.IsInf(g.Margin, 0) {
		return g, fmt.Errorf("%s: promote.margin %v must be a non-negative number", path, g.Margin)
	}
	if !strings.HasPrefix(g.Metric, "test_") {
		return g, fmt.Errorf("%s: promote.metric %q: expected a test_* metric (test_accuracy, test_loss)", path, g.Metric)
	}
	return g, nil
}

// promoteRequest is what one promotion needs; train fills it from its own flags.
type promoteRequest struct {
	client                *mlflowclient.Client
	model, version, runID string
	champion, challenger  string
	params, data, split   string
	paramsRequired        bool
	stderr                io.Writer
}

func runPromote(c *cli.Context) error {
	cl, err := newMLflowClient(c)
	if err != nil {
		return cli.Exit(fmt.Sprintf("catdog model promote: %v", err), 2)
	}
	if cl.TrackingURI() == "" {
		return cli.Exit("catdog model promote: no tracking server (--tracking-uri or MLFLOW_TRACKING_URI)", 2)
	}
	d, err := promoteVersion(c.Context, promoteRequest{
		client: cl, model: c.String("registered-model"), version: c.String("version"), runID: c.String("run-id"),
		champion: c.String("champion-alias"), challenger: c.String("challenger-alias"),
		params: c.String("params"), paramsRequired: c.IsSet("params"), data: c.String("data"), split: c.String("split"),
		stderr: c.App.ErrWriter,
	})
	if err != nil {
		return fmt.Errorf("catdog model promote: %w", err)
	}
	if c.Bool("json") {
		b, _ := json.MarshalIndent(d, "", "  ")
		fmt.Fprintf(c.App.Writer, "%s\n", b)
	} else {
		printDecision(c.App.Writer, d)
	}
	a := gha.New(c.App.Writer, gha.FromEnv(os.Getenv))
	if a.Enabled() {
		moved := d.Outcome == promote.OutcomeFirst || d.Outcome == promote.OutcomePromoted
		for k, v := range map[string]string{"decision": d.Outcome, "version": d.Challenger, "champion": d.ChampionAfter, "champion_moved": fmt.Sprint(moved)} {
			if err := a.SetOutput(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func printDecision(w io.Writer, d *promote.Decision) {
	fmt.Fprintf(w, "promote %s v%s: %s — %s\n", d.Model, d.Challenger, d.Outcome, d.Reason)
	fmt.Fprintf(w, "  %s on split %s: challenger v%s %.4f (%s)", d.Gate.Metric, d.SplitMD5, d.Challenger, d.ChallengerScore.Value, d.ChallengerScore.Source)
	if d.Champion != "" {
		fmt.Fprintf(w, ", champion v%s %.4f (%s)", d.Champion, d.ChampionScore.Value, d.ChampionScore.Source)
	}
	fmt.Fprintf(w, "; margin %g\n  @%s -> v%s\n", d.Gate.Margin, d.ChampionAliasName, d.ChampionAfter)
}

// promoteVersion resolves the challenger and runs the gate.
func promoteVersion(ctx context.Context, r promoteRequest) (*promote.Decision, error) {
	gate, err := readGate(r.params, r.paramsRequired)
	if err != nil {
		return nil, err
	}
	prep, err := imageprep.ReadPrepared(r.data)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	version := r.version
	if version == "" {
		mv, err := findChallenger(ctx, r.client, r.model, r.runID)
		if err != nil {
			return nil, err
		}
		version = mv.Version
	}
	return promote.Promote(ctx, promote.Options{
		Client: r.client, Model: r.model, Version: version, ChampionAlias: r.champion, ChallengerAlias: r.challenger,
		Gate: gate, SplitMD5: prep.ManifestMD5, Score: versionScorer(r, gate, prep.ManifestMD5),
		Log: func(f string, a ...any) { fmt.Fprintf(r.stderr, f+"\n", a...) },
	})
}

// findChallenger is the version registered from runID, or the newest version.
func findChallenger(ctx context.Context, c *mlflowclient.Client, model, runID string) (*mlflowclient.ModelVersion, error) {
	if runID == "" {
		mv, _, err := c.ResolveModelURI(ctx, "models:/"+model+"/latest")
		return mv, err
	}
	vs, _, err := c.SearchModelVersions(ctx, mlflowclient.ModelVersionQuery{Filter: fmt.Sprintf("name='%s' and run_id='%s'", model, runID)})
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("no version of %s was registered from run %s", model, runID)
	}
	return &vs[0], nil
}

// versionScorer scores a version by its run's metric when the run was evaluated on the same
// split, and otherwise pulls the version and evaluates it on the split (catdog evaluate).
func versionScorer(r promoteRequest, gate promote.Gate, split string) promote.Scorer {
	return func(ctx context.Context, mv *mlflowclient.ModelVersion) (promote.Score, error) {
		if mv.RunID != "" {
			run, err := r.client.GetRun(ctx, mv.RunID)
			if err != nil && !errors.Is(err, mlflowclient.ErrNotFound) {
				return promote.Score{}, err
			}
			if err == nil {
				s, _ := run.Param(splitParam)
				if v, ok := run.Metric(gate.Metric); ok && s == split {
					return promote.Score{Value: v, SplitMD5: split, Source: "run metric"}, nil
				}
			}
		}
		fmt.Fprintf(r.stderr, "promote: v%s was not evaluated on split %s: pulling and re-evaluating it\n", mv.Version, split)
		dir, err := os.MkdirTemp("", "catdog-promote-")
		if err != nil {
			return promote.Score{}, err
		}
		defer os.RemoveAll(dir)
		if _, _, err := pullModel(ctx, r.client, fmt.Sprintf("models:/%s/%s", mv.Name, mv.Version), dir, r.stderr); err != nil {
			return promote.Score{}, fmt.Errorf("pulling v%s: %w", mv.Version, err)
		}
		v, err := evaluateDir(ctx, dir, r.data, r.split, strings.TrimPrefix(gate.Metric, "test_"))
		if err != nil {
			return promote.Score{}, fmt.Errorf("re-evaluating v%s: %w", mv.Version, err)
		}
		return promote.Score{Value: v, SplitMD5: split, Source: "re-evaluated"}, nil
	}
}

// evaluateDir runs `catdog evaluate --json -` (the libtorch build) on a model directory and
// returns the named top-level number of its evaluation (accuracy, loss).
func evaluateDir(ctx context.Context, modelDir, data, split, key string) (float64, error) {
	bin, err := torchBinary()
	if err != nil {
		return 0, err
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "evaluate", "--model", modelDir, "--data", data, "--split", split, "--json", "-")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("catdog evaluate: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	var ev map[string]any
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		return 0, fmt.Errorf("catdog evaluate: %w", err)
	}
	v, ok := ev[key].(float64)
	if !ok {
		return 0, fmt.Errorf("the evaluation has no number %q", key)
	}
	return v, nil
}
