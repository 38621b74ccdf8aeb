package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/driftreport"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/drifttest"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// driftModelDir writes a model directory holding only a drift profile made from dev photos
// cat/dog 300..359 at size 64.
func driftModelDir(t *testing.T) string {
	t.Helper()
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var paths []string
	for i := 300; i < 360; i++ {
		paths = append(paths, filepath.Join(dev, "Cat", fmt.Sprintf("cat.%d.jpg", i)), filepath.Join(dev, "Dog", fmt.Sprintf("dog.%d.jpg", i)))
	}
	rows, _, err := imagedrift.Files(t.Context(), paths, imagedrift.FilesOptions{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	p, err := drift.NewProfile(imagedrift.Table(rows), 64, "test reference", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := p.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, modeldir.DriftProfile), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDriftReportCommand(t *testing.T) {
	model := driftModelDir(t)
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var photos []string
	for i := 400; i < 430; i++ {
		photos = append(photos, filepath.Join(dev, "Cat", fmt.Sprintf("cat.%d.jpg", i)), filepath.Join(dev, "Dog", fmt.Sprintf("dog.%d.jpg", i)))
	}
	dark := filepath.Join(t.TempDir(), "dark")
	if _, err := drifttest.WriteDerived(photos, drifttest.Darken, dark); err != nil {
		t.Fatal(err)
	}
	// one unusable file is skipped and listed, not fatal
	if err := os.WriteFile(filepath.Join(dark, "broken.jpg"), []byte("\xff\xd8 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if keep := os.Getenv("CATDOG_KEEP_DRIFT_REPORT"); keep != "" {
		out = keep // look at the page: CATDOG_KEEP_DRIFT_REPORT=/tmp/report go test -run DriftReport
	}
	stdout, stderr, err := prepareCLI(t, "drift", "report", "--model", model, "--data", dark, "--out", out, "--fail-on-drift")
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 3 {
		t.Fatalf("want exit 3 (dataset drift), got %v\n%s\n%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "DATASET DRIFT") || !strings.Contains(stdout, "brightness") {
		t.Errorf("summary:\n%s", stdout)
	}
	if !strings.Contains(stderr, "features") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, driftreport.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep driftreport.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Format != driftreport.Format || rep.CurrentRows != 60 || rep.ReferenceRows != 120 || len(rep.Skipped) != 1 || !rep.DatasetDrift {
		t.Fatalf("report: format %q, rows %d/%d, skipped %v, dataset drift %v", rep.Format, rep.CurrentRows, rep.ReferenceRows, rep.Skipped, rep.DatasetDrift)
	}
	byName := map[string]drift.ColumnResult{}
	for _, c := range rep.Columns {
		byName[c.Feature] = c
	}
	if c := byName["brightness"]; !c.Drifted || c.Method != drift.MethodKS || c.Threshold != 0.05 {
		t.Errorf("brightness: %+v", c)
	}
	if c := byName["width"]; c.Drifted {
		t.Errorf("width drifted on darkened photos: %+v", c)
	}
	html, err := os.ReadFile(filepath.Join(out, driftreport.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range imageprep.FeatureNames() {
		img := filepath.Join(out, driftreport.PlotDir, f+".png")
		if !bytes.Contains(html, []byte(`src="plots/`+f+`.png"`)) {
			t.Errorf("page does not show %s", f)
		}
		pf, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(pf)
		pf.Close()
		if err != nil || cfg.Width < 400 {
			t.Errorf("%s: %v %+v", img, err, cfg)
		}
	}
	if !bytes.Contains(html, []byte("Dataset drift")) {
		t.Error("page has no verdict")
	}

	// The same rows as a feature CSV give the same report.
	darkPaths, err := imagedrift.ListImages(dark, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := imagedrift.Files(t.Context(), darkPaths, imagedrift.FilesOptions{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	var csvBuf bytes.Buffer
	if err := imagedrift.Table(rows).EncodeCSV(&csvBuf); err != nil {
		t.Fatal(err)
	}
	csvFile := filepath.Join(t.TempDir(), "features.csv")
	if err := os.WriteFile(csvFile, csvBuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	outCSV := t.TempDir()
	if _, stderr, err := prepareCLI(t, "drift", "report", "--model", model, "--data", csvFile, "--out", outCSV); err != nil {
		t.Fatalf("csv: %v\n%s", err, stderr)
	}
	var repCSV driftreport.Report
	if b, err := os.ReadFile(filepath.Join(outCSV, driftreport.JSONFile)); err != nil || json.Unmarshal(b, &repCSV) != nil {
		t.Fatalf("csv report: %v", err)
	}
	for i, c := range repCSV.Columns {
		if c.Score != rep.Columns[i].Score || c.Drifted != rep.Columns[i].Drifted {
			t.Errorf("csv %s: %v %v, folder %v %v", c.Feature, c.Score, c.Drifted, rep.Columns[i].Score, rep.Columns[i].Drifted)
		}
	}

	// The undrifted photos themselves: no dataset drift, exit 0; the same rows as a CSV agree.
	out2 := t.TempDir()
	if _, stderr, err := prepareCLI(t, "drift", "report", "--model", model, "--data", dev+"/Cat", "--out", out2, "-q", "--fail-on-drift"); err != nil && !strings.Contains(err.Error(), "dataset drift") {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// bad inputs
	for _, args := range [][]string{
		{"--model", t.TempDir(), "--data", dark},
		{"--model", model, "--data", filepath.Join(out, "missing")},
		{"--model", model, "--data", dark, "--method", "t-test"},
	} {
		if _, _, err := prepareCLI(t, append([]string{"drift", "report", "--out", t.TempDir(), "-q"}, args...)...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestDriftReportServeLogAndParams: a serve log whose lines carry the prediction gets a
// prediction comparison beside the input one when the profile records the validation
// predictions; --params sets the methods and share as serve reads them, flags override it.
func TestDriftReportServeLogAndParams(t *testing.T) {
	model := driftModelDir(t)
	f, err := os.Open(filepath.Join(model, modeldir.DriftProfile))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := drift.DecodeProfile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ref := drifttest.SyntheticPredictions(200, 0.5, 0, 1)
	prof.Predictions = &drift.PredictionProfile{Split: "val", Rows: 200, ClassShare: map[string]float64{"cat": 0, "dog": 0}, Confidence: ref.Columns[0]}
	for _, c := range ref.Columns[1] {
		prof.Predictions.ClassShare[[]string{"cat", "dog"}[int(c)]] += 1.0 / 200
	}
	var pb bytes.Buffer
	if err := prof.Encode(&pb); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, modeldir.DriftProfile), pb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// 60 requests of undrifted photos, every one answered "dog" with confidence ~1.
	dev := filepath.Join(testenv.SharedData(t), "petimages-dev")
	var paths []string
	for i := 400; i < 430; i++ {
		paths = append(paths, filepath.Join(dev, "Cat", fmt.Sprintf("cat.%d.jpg", i)), filepath.Join(dev, "Dog", fmt.Sprintf("dog.%d.jpg", i)))
	}
	rows, _, err := imagedrift.Files(t.Context(), paths, imagedrift.FilesOptions{Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	log.WriteString(`{"msg":"listening"}` + "\n")
	for i, r := range rows {
		feats := map[string]float64{}
		for j, n := range imageprep.FeatureNames() {
			feats[n] = r[j]
		}
		line, _ := json.Marshal(map[string]any{"msg": "request", "endpoint": "predict", "class": "dog", "confidence": 0.99 - float64(i)/1e4, "features": feats})
		log.Write(append(line, '\n'))
	}
	logFile := filepath.Join(t.TempDir(), "serve.log")
	if err := os.WriteFile(logFile, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(t.TempDir(), "params.yaml")
	if err := os.WriteFile(params, []byte("epochs: 3\ndrift:\n  method: psi\n  thresholds: {psi: 0.25}\n  drift_share: 0.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		wantMethod drift.Method // of every input column
		wantThresh float64
		wantShare  float64
	}{
		{"defaults", nil, "", 0, 0.5},
		{"params", []string{"--params", params}, drift.MethodPSI, 0.25, 0.3},
		{"flags over params", []string{"--params", params, "--method", "wasserstein", "--drift-share", "0.7"}, drift.MethodWasserstein, 0.1, 0.7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"drift", "report", "--model", model, "--data", logFile, "--out", out, "-q"}, tc.args...)
			stdout, stderr, err := prepareCLI(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s\n%s", err, stdout, stderr)
			}
			var rep driftreport.Report
			if b, err := os.ReadFile(filepath.Join(out, driftreport.JSONFile)); err != nil || json.Unmarshal(b, &rep) != nil {
				t.Fatalf("report: %v", err)
			}
			if rep.CurrentRows != 60 || rep.DriftShare != tc.wantShare || len(rep.Columns) != 15 {
				t.Fatalf("rows %d, drift share %v, %d columns", rep.CurrentRows, rep.DriftShare, len(rep.Columns))
			}
			for _, c := range rep.Columns {
				if tc.wantMethod != "" && (c.Method != tc.wantMethod || c.Threshold != tc.wantThresh) {
					t.Errorf("%s: %s at %v, want %s at %v", c.Feature, c.Method, c.Threshold, tc.wantMethod, tc.wantThresh)
				}
			}
			p := rep.Predictions
			if p == nil || p.CurrentRows != 60 || p.ReferenceRows != 200 || len(p.Columns) != 2 {
				t.Fatalf("predictions: %+v", p)
			}
			// All dogs against a half-and-half validation split: the class drifts whatever the method.
			if c := p.Columns[1]; c.Feature != drift.PredictedClassColumn || !c.Drifted {
				t.Errorf("predicted_class: %+v", c)
			}
			if tc.wantMethod == "" {
				want, err := drift.Compare(mustPredTable(t, prof.Predictions), predTableOf(60, 1, func(i int) float64 { return 0.99 - float64(i)/1e4 }), drift.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for i, c := range want.Columns {
					if p.Columns[i].Score != c.Score || p.Columns[i].Method != c.Method {
						t.Errorf("%s: %v %s, want %v %s", c.Feature, p.Columns[i].Score, p.Columns[i].Method, c.Score, c.Method)
					}
				}
			}
			if !strings.Contains(stdout, "predictions:") {
				t.Errorf("summary lacks predictions:\n%s", stdout)
			}
			html, err := os.ReadFile(filepath.Join(out, driftreport.HTMLFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, col := range drift.PredictionColumns() {
				if !bytes.Contains(html, []byte(`src="plots/`+col+`.png"`)) {
					t.Errorf("page does not show %s", col)
				}
				if _, err := os.Stat(filepath.Join(out, driftreport.PlotDir, col+".png")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("drift:\n  drift_shares: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = prepareCLI(t, "drift", "report", "--model", model, "--data", logFile, "--out", t.TempDir(), "-q", "--params", bad)
	var ec cli.ExitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 2 {
		t.Errorf("bad --params: %v, want exit 2", err)
	}
}

func mustPredTable(t *testing.T, pp *drift.PredictionProfile) drift.Table {
	t.Helper()
	tab, err := pp.Table()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func predTableOf(n int, class float64, conf func(int) float64) drift.Table {
	tab := drift.Table{Names: drift.PredictionColumns(), Kinds: []drift.Kind{drift.Numerical, drift.Categorical}, Columns: make([][]float64, 2)}
	for i := range n {
		tab.Columns[0] = append(tab.Columns[0], conf(i))
		tab.Columns[1] = append(tab.Columns[1], class)
	}
	return tab
}
