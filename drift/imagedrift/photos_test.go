package imagedrift_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/drifttest"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// inputSize is the model input size of params.yaml (the features' pixel statistics are taken
// on the image resized to it, as in serving).
const inputSize = 128

// devSplits lists the dev photos and splits them as `catdog prepare` does (seed 42).
func devSplits(t *testing.T) map[string][]string {
	t.Helper()
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	paths, err := imagedrift.ListImages(dev, 0)
	if err != nil {
		t.Fatal(err)
	}
	var samples []imageprep.Sample
	for _, p := range paths {
		rel, _ := filepath.Rel(dev, p)
		label, ok, _ := imageprep.LabelOf(filepath.ToSlash(rel))
		if !ok {
			t.Fatalf("unlabelled dev photo %s", rel)
		}
		samples = append(samples, imageprep.Sample{Path: p, Label: label})
	}
	if err := imageprep.AssignSplits(samples, imageprep.DefaultFractions(), 42); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range samples {
		out[s.Split] = append(out[s.Split], s.Path)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func features(t *testing.T, paths []string) drift.Table {
	t.Helper()
	rows, skipped, err := imagedrift.Files(context.Background(), paths, imagedrift.FilesOptions{Size: inputSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Fatalf("skipped %d files, first %s: %v", len(skipped), skipped[0].Path, skipped[0].Err)
	}
	return imagedrift.Table(rows)
}

// sample returns n rows of tab drawn without replacement (seeded).
func sample(tab drift.Table, n int, seed uint64) drift.Table {
	idx := rand.New(rand.NewPCG(seed, 7)).Perm(tab.Rows())[:n]
	sort.Ints(idx)
	out := drift.Table{Names: tab.Names, Kinds: tab.Kinds}
	for _, c := range tab.Columns {
		col := make([]float64, n)
		for i, j := range idx {
			col[i] = c[j]
		}
		out.Columns = append(out.Columns, col)
	}
	return out
}

// TestPhotoDriftAgreesWithEvidently is the acceptance test of the drift statistics on real
// photos: the features of the training split are the reference (1,601 rows: Evidently uses the
// normed Wasserstein distance and Jensen–Shannon; and a seeded sample of 1,000 of them: KS and
// the z-test), the current data are the test split and four drifted copies of it made here.
// Every score must equal Evidently's DataDriftPreset to 1e-6 with the same decisions. The test
// split must show no dataset drift and no drift in size, aspect ratio or the grayscale share;
// each drifted copy must drift on the features the transform changes, and must not drift on
// the features it keeps unless the undrifted test split already did (200 photos: with
// Evidently's thresholds a few colour statistics of this split already cross them).
func TestPhotoDriftAgreesWithEvidently(t *testing.T) {
	splits := devSplits(t)
	ref := features(t, splits[imageprep.SplitTrain])
	test := splits[imageprep.SplitTest]
	currents := map[string]drift.Table{"test": features(t, test)}
	tmp := t.TempDir()
	for _, tr := range drifttest.Transforms() {
		paths, err := drifttest.WriteDerived(test, tr, filepath.Join(tmp, string(tr)))
		if err != nil {
			t.Fatal(err)
		}
		currents[string(tr)] = features(t, paths)
	}
	refs := map[string]drift.Table{"train": ref, "train1000": sample(ref, 1000, 42)}
	var cases []drifttest.Case
	for rn, r := range refs {
		for cn, c := range currents {
			cases = append(cases, drifttest.Case{Name: rn + "/" + cn, Ref: r, Cur: c})
		}
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	got := drifttest.CompareWithEvidently(t, cases)

	// What each transform must move, and what it must leave alone.
	expect := map[string]struct{ drift, keep []string }{
		"test": {keep: []string{"width", "height", "aspect_ratio", "grayscale"}},
		"darken": {
			drift: []string{"mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "brightness", "contrast", "sharpness"},
			keep:  []string{"width", "height", "aspect_ratio", "grayscale"},
		},
		"grayscale": {
			drift: []string{"saturation", "grayscale"},
			keep:  []string{"width", "height", "aspect_ratio", "brightness", "contrast"},
		},
		"downscale": {
			drift: []string{"width", "height", "file_size", "sharpness"},
			keep:  []string{"mean_r", "mean_g", "mean_b", "brightness", "saturation", "grayscale"},
		},
		// At quality 5 the chroma planes are quantised nearly flat: colour fades (saturation)
		// and some photos become grayscale, so those two may move; size and light may not.
		"recompress": {
			drift: []string{"file_size"},
			keep:  []string{"width", "height", "aspect_ratio", "mean_r", "mean_g", "mean_b", "brightness"},
		},
	}
	for _, c := range cases {
		res, ok := got[c.Name]
		refName, cur, _ := strings.Cut(c.Name, "/")
		base, okBase := got[refName+"/test"]
		if !ok || !okBase {
			continue // the agreement subtest failed and said why
		}
		baseDrift := map[string]bool{}
		for _, col := range base.Columns {
			baseDrift[col.Feature] = col.Drifted
		}
		e := expect[cur]
		drifted := map[string]bool{}
		var line []string
		for _, col := range res.Columns {
			drifted[col.Feature] = col.Drifted
			mark := ""
			if col.Drifted {
				mark = "*"
			}
			line = append(line, fmt.Sprintf("%s%s=%.3g", mark, col.Feature, col.Score))
		}
		t.Logf("%s (%s): %s", c.Name, res.Columns[0].Method, strings.Join(line, " "))
		for _, f := range e.drift {
			if !drifted[f] {
				t.Errorf("%s: %s did not drift", c.Name, f)
			}
		}
		for _, f := range e.keep {
			if drifted[f] && (cur == "test" || !baseDrift[f]) {
				t.Errorf("%s: %s drifted", c.Name, f)
			}
		}
		if cur == "test" && res.DatasetDrift {
			t.Errorf("%s: dataset drift on the test split", c.Name)
		}
	}
}
