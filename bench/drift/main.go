// Command drift benchmarks the drift comparison of `catdog drift report` against Evidently's
// DataDriftPreset on the same feature table: the per-image features of the dev set's training
// split (reference, 1,601 rows) against its test split (200 rows) and against all 2,002 photos,
// plus a 1,000-row reference (KS/z-test path). catdog's drift.Compare and Evidently's
// Report.run (one Python process, import and CSV loading excluded) alternate ROUNDS times; the
// table gives medians. Both sides' statistics are checked equal before timing. The whole report
// is timed too: catdog's Compare + driftreport.Write (JSON, HTML page, 15 PNG histograms)
// against Evidently's Report.run + Snapshot.save_html.
//
//	go run ./bench/drift -data ../shared/data/petimages-dev -python .venv/bin/python -rounds 5
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/driftreport"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
)

func main() {
	data := flag.String("data", "../shared/data/petimages-dev", "dev photos (Cat/, Dog/)")
	python := flag.String("python", ".venv/bin/python", "python with evidently installed")
	script := flag.String("script", "drift/testdata/evidently_drift.py", "Evidently runner")
	rounds := flag.Int("rounds", 5, "alternating rounds")
	repeat := flag.Int("repeat", 3, "runs per side per round (median)")
	size := flag.Int("size", 128, "model input size the features are taken at")
	flag.Parse()
	if err := run(*data, *python, *script, *rounds, *repeat, *size); err != nil {
		log.Fatal(err)
	}
}

type benchCase struct {
	name     string
	ref, cur drift.Table
}

func run(data, python, script string, rounds, repeat, size int) error {
	paths, err := imagedrift.ListImages(data, 0)
	if err != nil {
		return err
	}
	var samples []imageprep.Sample
	for _, p := range paths {
		rel, _ := filepath.Rel(data, p)
		label, ok, _ := imageprep.LabelOf(filepath.ToSlash(rel))
		if !ok {
			return fmt.Errorf("unlabelled %s", rel)
		}
		samples = append(samples, imageprep.Sample{Path: p, Label: label})
	}
	if err := imageprep.AssignSplits(samples, imageprep.DefaultFractions(), 42); err != nil {
		return err
	}
	t0 := time.Now()
	rows, _, err := imagedrift.Files(context.Background(), paths, imagedrift.FilesOptions{Size: size})
	if err != nil {
		return err
	}
	featSecs := time.Since(t0).Seconds()
	var train, test []imageprep.Features
	for i, s := range samples {
		switch s.Split {
		case imageprep.SplitTrain:
			train = append(train, rows[i])
		case imageprep.SplitTest:
			test = append(test, rows[i])
		}
	}
	cases := []benchCase{
		{"train (1601) vs test (200)", imagedrift.Table(train), imagedrift.Table(test)},
		{"train (1601) vs all (2002)", imagedrift.Table(train), imagedrift.Table(rows)},
		{"train[:1000] vs test (200)", imagedrift.Table(train[:1000]), imagedrift.Table(test)},
	}
	dir, err := os.MkdirTemp("", "bench-drift-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	type spec struct {
		Name      string                `json:"name"`
		Reference string                `json:"reference"`
		Current   string                `json:"current"`
		Kinds     map[string]drift.Kind `json:"kinds"`
	}
	var specs []spec
	for i, c := range cases {
		s := spec{Name: c.name, Reference: filepath.Join(dir, fmt.Sprintf("r%d.csv", i)), Current: filepath.Join(dir, fmt.Sprintf("c%d.csv", i)), Kinds: map[string]drift.Kind{}}
		for j, n := range c.ref.Names {
			s.Kinds[n] = c.ref.Kinds[j]
		}
		if err := writeCSV(s.Reference, c.ref); err != nil {
			return err
		}
		if err := writeCSV(s.Current, c.cur); err != nil {
			return err
		}
		specs = append(specs, s)
	}
	b, _ := json.Marshal(specs)
	casesFile := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(casesFile, b, 0o644); err != nil {
		return err
	}
	goTimes := make([][]float64, len(cases))
	pyTimes := make([][]float64, len(cases))
	goReport := make([][]float64, len(cases))
	pyReport := make([][]float64, len(cases))
	htmlDir := filepath.Join(dir, "html")
	if err := os.MkdirAll(htmlDir, 0o755); err != nil {
		return err
	}
	for r := 0; r < rounds; r++ {
		for i, c := range cases {
			var ts []float64
			for k := 0; k < repeat; k++ {
				start := time.Now()
				res, err := drift.Compare(c.ref, c.cur, drift.Options{})
				if err != nil {
					return err
				}
				ts = append(ts, time.Since(start).Seconds())
				_ = res
			}
			goTimes[i] = append(goTimes[i], median(ts))
			ts = ts[:0]
			for k := 0; k < repeat; k++ {
				out := filepath.Join(dir, fmt.Sprintf("report%d", i))
				start := time.Now()
				res, err := drift.Compare(c.ref, c.cur, drift.Options{})
				if err != nil {
					return err
				}
				rep := &driftreport.Report{Format: driftreport.Format, Version: driftreport.Version, Created: time.Now().UTC(),
					Model: "bench", Reference: "train split", Current: c.name, Result: res}
				if err := driftreport.Write(out, rep, c.ref, c.cur); err != nil {
					return err
				}
				ts = append(ts, time.Since(start).Seconds())
			}
			goReport[i] = append(goReport[i], median(ts))
		}
		out, err := exec.Command(python, script, casesFile, strconv.Itoa(repeat), htmlDir).Output()
		if err != nil {
			return fmt.Errorf("evidently: %w", err)
		}
		var ev map[string]struct {
			Seconds       float64 `json:"seconds"`
			SecondsReport float64 `json:"seconds_report"`
			Columns       []struct {
				Feature string  `json:"feature"`
				Score   float64 `json:"score"`
			} `json:"columns"`
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			return err
		}
		for i, c := range cases {
			e := ev[c.name]
			pyTimes[i] = append(pyTimes[i], e.Seconds)
			pyReport[i] = append(pyReport[i], e.SecondsReport)
			if r == 0 { // the statistics agree before anything is timed
				res, _ := drift.Compare(c.ref, c.cur, drift.Options{})
				for _, col := range e.Columns {
					for _, g := range res.Columns {
						if g.Feature == col.Feature && math.Abs(g.Score-col.Score) > 1e-6*math.Max(1, math.Abs(col.Score)) {
							return fmt.Errorf("%s %s: catdog %v, evidently %v", c.name, col.Feature, g.Score, col.Score)
						}
					}
				}
			}
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, rounds)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("# %s, %d rounds × %d runs per side, load %s\n", time.Now().UTC().Format(time.RFC3339), rounds, repeat, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("# features of %d photos at %d px: %.2f s (both sides use this table)\n\n", len(rows), size, featSecs)
	fmt.Println("| comparison (15 features) | catdog drift.Compare (ms) | Evidently DataDriftPreset Report.run (ms) | speed-up |")
	fmt.Println("|---|---:|---:|---:|")
	for i, c := range cases {
		g, p := median(goTimes[i])*1000, median(pyTimes[i])*1000
		fmt.Printf("| %s | %.1f | %.0f | %.0f× |\n", c.name, g, p, p/g)
	}
	fmt.Println()
	fmt.Println("| whole report (15 features) | catdog Compare + driftreport.Write: JSON, HTML, 15 PNGs (ms) | Evidently Report.run + save_html (ms) | speed-up |")
	fmt.Println("|---|---:|---:|---:|")
	for i, c := range cases {
		g, p := median(goReport[i])*1000, median(pyReport[i])*1000
		fmt.Printf("| %s | %.1f | %.0f | %.0f× |\n", c.name, g, p, p/g)
	}
	return nil
}

func writeCSV(path string, t drift.Table) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.EncodeCSV(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func median(x []float64) float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return s[len(s)/2]
}
