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
	if err := os.WriteFile(filepath.Join(dir, drift.ProfileFile), buf.Bytes(), 0o644); err != nil {
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
