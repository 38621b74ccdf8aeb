// Package promote is the champion/challenger gate of the MLflow model registry: it compares
// a new model version with the version behind the champion alias on the same test split,
// moves the alias only when the challenger is better by a margin (else points the
// challenger alias at it), and records the decision as tags on both versions and on the
// challenger's run.
//
// Promotions of one registered model are serialised through the registry itself: a lock is
// a registered model "<name>.promotion-lock", whose creation the server makes atomic (a
// second create answers RESOURCE_ALREADY_EXISTS). The champion alias is also re-read right
// before it is moved, and the decision is taken again if it changed (someone moved it by
// hand, or a promoter that does not take the lock), so a concurrent promotion is never
// overwritten by a stale decision.
//
// The package knows nothing about training: scores come from a Scorer the caller provides
// (catdog's reads the run's metric when the run was evaluated on the same split, and pulls
// and re-evaluates the model otherwise).
package promote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/catdog-mlops/catdog/mlflowclient"
)

// Outcomes of a promotion.
const (
	OutcomeFirst    = "first"    // there was no champion: the version is the champion now
	OutcomePromoted = "promoted" // better than the champion: the champion alias moved to it
	OutcomeRejected = "rejected" // not better: the challenger alias points at it
	OutcomeAlready  = "already"  // it already is the champion: nothing changed
)

// Tag keys written on the versions and the run (prefix catdog.promotion.).
const (
	TagPrefix          = "catdog.promotion."
	TagDecision        = TagPrefix + "decision"
	TagReason          = TagPrefix + "reason"
	TagMetric          = TagPrefix + "metric"
	TagMargin          = TagPrefix + "margin"
	TagSplitMD5        = TagPrefix + "split_md5"
	TagChallenger      = TagPrefix + "challenger_version"
	TagChallengerScore = TagPrefix + "challenger_score"
	TagChampion        = TagPrefix + "champion_version"
	TagChampionScore   = TagPrefix + "champion_score"
	TagTime            = TagPrefix + "time"
)

// Gate is the comparison rule (params.yaml `promote:`).
type Gate struct {
	Metric         string  // e.g. test_accuracy
	Margin         float64 // the challenger must beat the champion by more than this
	HigherIsBetter bool
}

// Better reports whether challenger beats champion under the gate.
func (g Gate) Better(challenger, champion float64) bool {
	if math.IsNaN(challenger) {
		return false
	}
	if math.IsNaN(champion) {
		return true
	}
	if g.HigherIsBetter {
		return challenger > champion+g.Margin
	}
	return challenger < champion-g.Margin
}

// Score is a version's metric on a split.
type Score struct {
	Value    float64
	SplitMD5 string // the split it was measured on
	Source   string // e.g. "run metric" or "re-evaluated"
}

// Scorer measures a model version's metric on the current test split.
type Scorer func(ctx context.Context, mv *mlflowclient.ModelVersion) (Score, error)

// Options configure Promote. Client, Model, Version, Gate.Metric, SplitMD5 and Score are
// required.
type Options struct {
	Client          *mlflowclient.Client
	Model           string // registered model name
	Version         string // the challenger
	ChampionAlias   string // default "champion"
	ChallengerAlias string // default "challenger"
	Gate            Gate
	SplitMD5        string // the test split both versions are judged on
	Score           Scorer
	LockTTL         time.Duration // a lock older than this is taken over; default 15 minutes
	LockWait        time.Duration // how long to wait for another promotion; default 10 minutes
	Now             func() time.Time
	Log             func(format string, args ...any)
}

// Decision is the outcome of Promote.
type Decision struct {
	Outcome           string
	Model             string
	Challenger        string // version
	ChallengerRunID   string
	ChallengerScore   Score
	Champion          string // the version that was champion when the decision was taken ("" if none)
	ChampionScore     Score
	Gate              Gate
	SplitMD5          string
	Reason            string
	ChampionAfter     string // the version the champion alias points at afterwards
	Redecided         int    // how often the champion changed under us and the decision was taken again
	ChampionAliasName string
}

// ErrLockTimeout is returned when another promotion held the lock for longer than LockWait.
var ErrLockTimeout = errors.New("promote: another promotion of this model is in progress")

// Promote runs the gate for one version. See the package documentation.
func Promote(ctx context.Context, o Options) (*Decision, error) {
	if o.Client == nil || o.Model == "" || o.Version == "" || o.Gate.Metric == "" || o.Score == nil || o.SplitMD5 == "" {
		return nil, errors.New("promote: Client, Model, Version, Gate.Metric, SplitMD5 and Score are required")
	}
	if o.ChampionAlias == "" {
		o.ChampionAlias = "champion"
	}
	if o.ChallengerAlias == "" {
		o.ChallengerAlias = "challenger"
	}
	if o.LockTTL == 0 {
		o.LockTTL = 15 * time.Minute
	}
	if o.LockWait == 0 {
		o.LockWait = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	for _, a := range []string{o.ChampionAlias, o.ChallengerAlias} {
		if err := mlflowclient.ValidateAlias(a); err != nil {
			return nil, err
		}
	}
	c := o.Client
	challenger, err := c.GetModelVersion(ctx, o.Model, o.Version)
	if err != nil {
		return nil, fmt.Errorf("promote: %s version %s: %w", o.Model, o.Version, err)
	}
	unlock, err := lock(ctx, o)
	if err != nil {
		return nil, err
	}
	defer unlock()

	d := &Decision{Model: o.Model, Challenger: challenger.Version, ChallengerRunID: challenger.RunID, Gate: o.Gate,
		SplitMD5: o.SplitMD5, ChampionAliasName: o.ChampionAlias}
	var challengerScored bool
	for attempt := 0; ; attempt++ {
		if attempt >= 5 {
			return nil, fmt.Errorf("promote: the %s alias kept moving while deciding (%d times)", o.ChampionAlias, attempt)
		}
		d.Redecided = attempt
		champ, err := currentChampion(ctx, c, o)
		if err != nil {
			return nil, err
		}
		if champ != nil && champ.Version == challenger.Version {
			d.Outcome, d.Champion, d.ChampionAfter = OutcomeAlready, champ.Version, champ.Version
			d.Reason = fmt.Sprintf("version %s already is @%s", champ.Version, o.ChampionAlias)
			return d, nil
		}
		if !challengerScored {
			if d.ChallengerScore, err = o.Score(ctx, challenger); err != nil {
				return nil, fmt.Errorf("promote: scoring challenger version %s: %w", challenger.Version, err)
			}
			challengerScored = true
		}
		d.Champion, d.ChampionScore = "", Score{}
		if champ == nil {
			d.Outcome = OutcomeFirst
			d.Reason = fmt.Sprintf("no @%s yet: the first model becomes champion", o.ChampionAlias)
		} else {
			d.Champion = champ.Version
			if d.ChampionScore, err = o.Score(ctx, champ); err != nil {
				return nil, fmt.Errorf("promote: scoring champion version %s: %w", champ.Version, err)
			}
			if o.Gate.Better(d.ChallengerScore.Value, d.ChampionScore.Value) {
				d.Outcome = OutcomePromoted
				d.Reason = fmt.Sprintf("%s %s beats champion v%s's %s by more than the margin %s",
					o.Gate.Metric, fmtF(d.ChallengerScore.Value), champ.Version, fmtF(d.ChampionScore.Value), fmtF(o.Gate.Margin))
			} else {
				d.Outcome = OutcomeRejected
				d.Reason = fmt.Sprintf("%s %s does not beat champion v%s's %s by more than the margin %s",
					o.Gate.Metric, fmtF(d.ChallengerScore.Value), champ.Version, fmtF(d.ChampionScore.Value), fmtF(o.Gate.Margin))
			}
		}
		// compare-and-set: only act if the champion is still the one we judged against
		now, err := currentChampion(ctx, c, o)
		if err != nil {
			return nil, err
		}
		if version(now) != version(champ) {
			o.Log("promote: @%s moved from %q to %q while deciding; deciding again", o.ChampionAlias, version(champ), version(now))
			continue
		}
		break
	}
	switch d.Outcome {
	case OutcomeFirst, OutcomePromoted:
		if err := c.SetAlias(ctx, o.Model, o.ChampionAlias, challenger.Version); err != nil {
			return nil, fmt.Errorf("promote: moving @%s: %w", o.ChampionAlias, err)
		}
		if cur, err := c.GetModelVersionByAlias(ctx, o.Model, o.ChallengerAlias); err == nil && cur.Version == challenger.Version {
			if err := c.DeleteAlias(ctx, o.Model, o.ChallengerAlias); err != nil {
				return nil, err
			}
		}
		d.ChampionAfter = challenger.Version
	case OutcomeRejected:
		if err := c.SetAlias(ctx, o.Model, o.ChallengerAlias, challenger.Version); err != nil {
			return nil, fmt.Errorf("promote: setting @%s: %w", o.ChallengerAlias, err)
		}
		d.ChampionAfter = d.Champion
	}
	if err := record(ctx, c, o, d); err != nil {
		return d, fmt.Errorf("promote: recording the decision: %w", err)
	}
	return d, nil
}

func version(mv *mlflowclient.ModelVersion) string {
	if mv == nil {
		return ""
	}
	return mv.Version
}

func currentChampion(ctx context.Context, c *mlflowclient.Client, o Options) (*mlflowclient.ModelVersion, error) {
	mv, err := c.GetModelVersionByAlias(ctx, o.Model, o.ChampionAlias)
	if errors.Is(err, mlflowclient.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("promote: reading @%s: %w", o.ChampionAlias, err)
	}
	return mv, nil
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// Tags returns the tags recording d (the same set goes on the challenger version and run).
func (d *Decision) Tags(now time.Time) []mlflowclient.Tag {
	tags := []mlflowclient.Tag{
		{Key: TagDecision, Value: d.Outcome},
		{Key: TagReason, Value: d.Reason},
		{Key: TagMetric, Value: d.Gate.Metric},
		{Key: TagMargin, Value: fmtF(d.Gate.Margin)},
		{Key: TagSplitMD5, Value: d.SplitMD5},
		{Key: TagChallenger, Value: d.Challenger},
		{Key: TagChallengerScore, Value: fmtF(d.ChallengerScore.Value)},
		{Key: TagTime, Value: now.UTC().Format(time.RFC3339)},
	}
	if d.Champion != "" {
		tags = append(tags, mlflowclient.Tag{Key: TagChampion, Value: d.Champion},
			mlflowclient.Tag{Key: TagChampionScore, Value: fmtF(d.ChampionScore.Value)})
	}
	return tags
}

func record(ctx context.Context, c *mlflowclient.Client, o Options, d *Decision) error {
	tags := d.Tags(o.Now())
	var errs []error
	versions := []string{d.Challenger}
	if d.Champion != "" {
		versions = append(versions, d.Champion)
	}
	for _, v := range versions {
		for _, t := range tags {
			errs = append(errs, c.SetModelVersionTag(ctx, o.Model, v, t.Key, t.Value))
		}
	}
	if d.ChallengerRunID != "" {
		for _, t := range tags {
			errs = append(errs, c.SetTag(ctx, d.ChallengerRunID, t.Key, t.Value))
		}
	}
	return errors.Join(errs...)
}

// lock takes the promotion lock of o.Model: creating the registered model
// "<model>.promotion-lock" succeeds for exactly one caller. A lock older than LockTTL (its
// holder died) is taken over.
func lock(ctx context.Context, o Options) (func(), error) {
	c := o.Client
	name := o.Model + ".promotion-lock"
	host, _ := os.Hostname()
	desc := fmt.Sprintf("held by catdog model promote (%s pid %d) for %s v%s; deleted when the promotion ends", host, os.Getpid(), o.Model, o.Version)
	deadline := o.Now().Add(o.LockWait)
	delay := 200 * time.Millisecond
	for {
		_, err := c.CreateRegisteredModel(ctx, name, desc)
		if err == nil {
			return func() {
				// a cancelled promotion must still release the lock
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				_ = c.DeleteRegisteredModel(rctx, name)
			}, nil
		}
		if !errors.Is(err, mlflowclient.ErrAlreadyExists) {
			return nil, fmt.Errorf("promote: taking the lock %s: %w", name, err)
		}
		if rm, gerr := c.GetRegisteredModel(ctx, name); gerr == nil && rm.CreationTimestamp > 0 &&
			o.Now().Sub(time.UnixMilli(rm.CreationTimestamp)) > o.LockTTL {
			o.Log("promote: taking over the stale lock %s (%s)", name, rm.Description)
			_ = c.DeleteRegisteredModel(ctx, name)
			continue
		}
		if o.Now().After(deadline) {
			return nil, fmt.Errorf("%w (lock %s)", ErrLockTimeout, name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
