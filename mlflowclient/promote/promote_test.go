package promote

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
)

var server *testenv.MLflowServer

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMLflow(m, "promote", &server)) }

const splitParam = "dataset_manifest_md5"

type fixture struct {
	t     *testing.T
	ctx   context.Context
	c     *mlflowclient.Client
	exp   string
	model string
	// reEval is what re-evaluating a version on the current split gives (the test's
	// stand-in for pulling the model and running it); calls records those re-evaluations
	mu     sync.Mutex
	reEval map[string]float64
	calls  []string
}

func newFixture(t *testing.T) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c, err := mlflowclient.New(server.URI)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("m-%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	exp, err := c.GetOrCreateExperiment(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureRegisteredModel(ctx, name); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, c: c, exp: exp.ID, model: name, reEval: map[string]float64{}}
}

// version registers a version whose run logged test_accuracy = acc on split.
func (f *fixture) version(acc float64, split string) *mlflowclient.ModelVersion {
	f.t.Helper()
	run, err := f.c.CreateRun(f.ctx, mlflowclient.CreateRunRequest{ExperimentID: f.exp})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.LogMetric(f.ctx, run.Info.RunID, "test_accuracy", acc, 0); err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.LogParam(f.ctx, run.Info.RunID, splitParam, split); err != nil {
		f.t.Fatal(err)
	}
	mv, err := f.c.CreateModelVersion(f.ctx, f.model, strings.TrimRight(run.Info.ArtifactURI, "/")+"/model", run.Info.RunID)
	if err != nil {
		f.t.Fatal(err)
	}
	return mv
}

// scorer uses the run's metric when the run was evaluated on split, else "re-evaluates".
func (f *fixture) scorer(split string, delay time.Duration) Scorer {
	return func(ctx context.Context, mv *mlflowclient.ModelVersion) (Score, error) {
		time.Sleep(delay) // widen the window two concurrent promotions race in
		run, err := f.c.GetRun(ctx, mv.RunID)
		if err != nil {
			return Score{}, err
		}
		if s, _ := run.Param(splitParam); s == split {
			v, _ := run.Metric("test_accuracy")
			return Score{Value: v, SplitMD5: split, Source: "run metric"}, nil
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, mv.Version)
		v, ok := f.reEval[mv.Version]
		if !ok {
			return Score{}, fmt.Errorf("version %s was not expected to be re-evaluated", mv.Version)
		}
		return Score{Value: v, SplitMD5: split, Source: "re-evaluated"}, nil
	}
}

func (f *fixture) promote(version string, margin float64, sc Scorer) *Decision {
	f.t.Helper()
	d, err := Promote(f.ctx, Options{Client: f.c, Model: f.model, Version: version, SplitMD5: "split-b",
		Gate: Gate{Metric: "test_accuracy", Margin: margin, HigherIsBetter: true}, Score: sc})
	if err != nil {
		f.t.Fatalf("Promote(v%s): %v", version, err)
	}
	return d
}

func (f *fixture) alias(a string) string {
	f.t.Helper()
	mv, err := f.c.GetModelVersionByAlias(f.ctx, f.model, a)
	if err != nil {
		return ""
	}
	return mv.Version
}

func (f *fixture) versionTags(v string) map[string]string {
	f.t.Helper()
	mv, err := f.c.GetModelVersion(f.ctx, f.model, v)
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]string{}
	for _, t := range mv.Tags {
		m[t.Key] = t.Value
	}
	return m
}

// TestPromoteGate: first model, a better challenger, a worse one, one within the margin, and
// a champion judged on another split (re-evaluated), all against the real server.
func TestPromoteGate(t *testing.T) {
	f := newFixture(t)
	sc := f.scorer("split-b", 0)
	v1 := f.version(0.80, "split-b")
	d := f.promote(v1.Version, 0, sc)
	if d.Outcome != OutcomeFirst || f.alias("champion") != v1.Version || f.versionTags(v1.Version)[TagDecision] != OutcomeFirst {
		t.Fatalf("first model: %+v, champion %q", d, f.alias("champion"))
	}

	v2 := f.version(0.90, "split-b")
	d = f.promote(v2.Version, 0, sc)
	if d.Outcome != OutcomePromoted || d.Champion != v1.Version || f.alias("champion") != v2.Version {
		t.Fatalf("better challenger: %+v, champion %q", d, f.alias("champion"))
	}
	for _, v := range []string{v1.Version, v2.Version} { // recorded on both versions
		tags := f.versionTags(v)
		if tags[TagDecision] != OutcomePromoted || tags[TagChallengerScore] != "0.9" || tags[TagChampionScore] != "0.8" ||
			tags[TagSplitMD5] != "split-b" || tags[TagMargin] != "0" || tags[TagChampion] != v1.Version || !strings.Contains(tags[TagReason], "beats") {
			t.Errorf("tags of v%s: %v", v, tags)
		}
	}
	run, err := f.c.GetRun(f.ctx, v2.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := run.Tag(TagDecision); got != OutcomePromoted {
		t.Errorf("run tag %s = %q", TagDecision, got)
	}

	v3 := f.version(0.85, "split-b")
	d = f.promote(v3.Version, 0, sc)
	if d.Outcome != OutcomeRejected || f.alias("champion") != v2.Version || f.alias("challenger") != v3.Version {
		t.Fatalf("worse challenger: %+v, champion %q challenger %q", d, f.alias("champion"), f.alias("challenger"))
	}
	if tags := f.versionTags(v2.Version); tags[TagDecision] != OutcomeRejected || tags[TagChallenger] != v3.Version {
		t.Errorf("the champion does not record the rejected challenge: %v", tags)
	}

	v4 := f.version(0.905, "split-b")
	if d = f.promote(v4.Version, 0.01, sc); d.Outcome != OutcomeRejected || f.alias("champion") != v2.Version {
		t.Fatalf("within the margin: %+v", d)
	}
	if d = f.promote(v2.Version, 0, sc); d.Outcome != OutcomeAlready {
		t.Fatalf("the champion itself: %+v", d)
	}

	// the data changed: the champion's run was judged on split-a, so it is re-evaluated on
	// split-b (and scores worse there than its recorded 0.9)
	v5 := f.version(0.86, "split-b")
	old := f.version(0.99, "split-a")
	if err := f.c.SetAlias(f.ctx, f.model, "champion", old.Version); err != nil {
		t.Fatal(err)
	}
	f.reEval[old.Version] = 0.84
	d = f.promote(v5.Version, 0, sc)
	if d.Outcome != OutcomePromoted || d.ChampionScore.Source != "re-evaluated" || d.ChampionScore.Value != 0.84 || len(f.calls) != 1 || f.calls[0] != old.Version {
		t.Fatalf("champion on another split: %+v, re-evaluated %v", d, f.calls)
	}
	if f.alias("challenger") == v5.Version {
		t.Errorf("the new champion is still @challenger")
	}
}

// TestPromoteConcurrent starts two promotions at once (the better one must end up champion
// whatever the order; the lock serialises them) and one where the alias is moved by hand while
// the decision is being taken (the re-check makes Promote decide again).
func TestPromoteConcurrent(t *testing.T) {
	f := newFixture(t)
	sc := f.scorer("split-b", 300*time.Millisecond)
	v1 := f.version(0.80, "split-b")
	f.promote(v1.Version, 0, sc)
	best, good := f.version(0.95, "split-b"), f.version(0.90, "split-b")
	var wg sync.WaitGroup
	ds := make([]*Decision, 2)
	errs := make([]error, 2)
	for i, v := range []string{good.Version, best.Version} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds[i], errs[i] = Promote(f.ctx, Options{Client: f.c, Model: f.model, Version: v, SplitMD5: "split-b",
				Gate: Gate{Metric: "test_accuracy", HigherIsBetter: true}, Score: sc})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("promotion %d: %v", i, err)
		}
	}
	if got := f.alias("champion"); got != best.Version {
		t.Fatalf("after two concurrent promotions @champion = v%s, want the better v%s (decisions %+v %+v)", got, best.Version, ds[0], ds[1])
	}
	// the two decisions were taken one after the other: the later one saw the earlier result
	g := ds[0]
	if !(g.Outcome == OutcomePromoted && g.Champion == v1.Version) && !(g.Outcome == OutcomeRejected && g.Champion == best.Version) {
		t.Errorf("the weaker challenger's decision is inconsistent: %+v", g)
	}
	if _, err := f.c.GetRegisteredModel(f.ctx, f.model+".promotion-lock"); err == nil {
		t.Errorf("the promotion lock was left behind")
	}

	// someone moves @champion by hand while a promotion is deciding
	manual := f.version(0.99, "split-b")
	next := f.version(0.97, "split-b")
	moved := false
	hand := func(ctx context.Context, mv *mlflowclient.ModelVersion) (Score, error) {
		if !moved && mv.Version == best.Version {
			moved = true
			if err := f.c.SetAlias(ctx, f.model, "champion", manual.Version); err != nil {
				return Score{}, err
			}
		}
		return sc(ctx, mv)
	}
	d := f.promote(next.Version, 0, hand)
	if d.Redecided != 1 || d.Champion != manual.Version || d.Outcome != OutcomeRejected || f.alias("champion") != manual.Version {
		t.Fatalf("alias moved while deciding: %+v, champion %q", d, f.alias("champion"))
	}
}

func TestGateBetter(t *testing.T) {
	tests := []struct {
		g         Gate
		ch, champ float64
		want      bool
	}{
		{Gate{HigherIsBetter: true}, 0.81, 0.80, true},
		{Gate{HigherIsBetter: true}, 0.80, 0.80, false},
		{Gate{HigherIsBetter: true, Margin: 0.02}, 0.81, 0.80, false},
		{Gate{HigherIsBetter: false}, 0.4, 0.5, true},
		{Gate{HigherIsBetter: false, Margin: 0.2}, 0.4, 0.5, false},
	}
	for _, tc := range tests {
		if got := tc.g.Better(tc.ch, tc.champ); got != tc.want {
			t.Errorf("%+v.Better(%v, %v) = %v", tc.g, tc.ch, tc.champ, got)
		}
	}
}
