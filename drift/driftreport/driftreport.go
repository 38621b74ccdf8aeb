// Package driftreport renders a drift comparison for people and programs: a JSON report
// (per feature: method, statistic, threshold, drifted; the drifted share and dataset drift)
// and an HTML page with one histogram picture per feature, reference against current.
package driftreport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Format and Version identify the JSON report.
const (
	Format  = "catdog-drift-report"
	Version = 1
)

// File names written by Write.
const (
	JSONFile = "drift_report.json"
	HTMLFile = "drift_report.html"
	PlotDir  = "plots"
)

// Skipped is an input that gave no features.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Report is the JSON report.
type Report struct {
	Format    string        `json:"format"`
	Version   int           `json:"version"`
	Created   time.Time     `json:"created"`
	Model     string        `json:"model"`     // the model directory or models:/ URI
	Reference string        `json:"reference"` // the profile's source
	Current   string        `json:"current"`   // the folder (or feature file) compared
	Skipped   []Skipped     `json:"skipped"`
	Options   drift.Options `json:"options"`
	drift.Result
	// Predictions compares what the model answered (confidence, predicted_class) with its
	// answers on the validation split, when the current data carries predictions (catdog
	// serve's log) and the profile records them. Not part of the input share above.
	Predictions *drift.Result `json:"predictions,omitempty"`
	Seconds     float64       `json:"seconds"` // time of the comparison itself
}

// Tables are the compared tables: the input features and, with Report.Predictions, the
// prediction columns.
type Tables struct {
	Ref, Cur         drift.Table
	PredRef, PredCur drift.Table
}

// Write writes JSONFile, HTMLFile and one PNG per feature under PlotDir into dir.
func Write(dir string, rep *Report, ref, cur drift.Table) error {
	return WriteTables(dir, rep, Tables{Ref: ref, Cur: cur})
}

// WriteTables is Write with the prediction tables too (one PNG per prediction column).
func WriteTables(dir string, rep *Report, t Tables) error {
	ref, cur := t.Ref, t.Cur
	if err := os.MkdirAll(filepath.Join(dir, PlotDir), 0o755); err != nil {
		return fmt.Errorf("driftreport: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("driftreport: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, JSONFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("driftreport: %w", err)
	}
	var rows []htmlRow
	for _, c := range rep.Columns {
		name := c.Feature + ".png"
		if err := plotFeature(filepath.Join(dir, PlotDir, name), c, ref.Column(c.Feature), cur.Column(c.Feature)); err != nil {
			return err
		}
		rows = append(rows, htmlRow{ColumnResult: c, Plot: PlotDir + "/" + name, Rule: rule(c)})
	}
	var predRows []htmlRow
	if rep.Predictions != nil {
		for _, c := range rep.Predictions.Columns {
			name := c.Feature + ".png"
			if err := plotFeature(filepath.Join(dir, PlotDir, name), c, t.PredRef.Column(c.Feature), t.PredCur.Column(c.Feature)); err != nil {
				return err
			}
			predRows = append(predRows, htmlRow{ColumnResult: c, Plot: PlotDir + "/" + name, Rule: rule(c)})
		}
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, htmlData{Report: rep, Rows: rows, PredRows: predRows}); err != nil {
		return fmt.Errorf("driftreport: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, HTMLFile), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("driftreport: %w", err)
	}
	return nil
}

// WriteText writes a short plain-text summary.
func WriteText(w io.Writer, rep *Report) error {
	var b bytes.Buffer
	verdict := "no dataset drift"
	if rep.DatasetDrift {
		verdict = "DATASET DRIFT"
	}
	fmt.Fprintf(&b, "%s: %d of %d features drifted (share %.2f, dataset drift at %.2f); reference %d rows, current %d rows\n",
		verdict, rep.Drifted, len(rep.Columns), rep.Share, rep.DriftShare, rep.ReferenceRows, rep.CurrentRows)
	fmt.Fprintf(&b, "%-14s %-14s %12s %10s %8s %8s\n", "feature", "method", "score", "threshold", "drifted", "psi")
	for _, c := range rep.Columns {
		d := "no"
		if c.Drifted {
			d = "YES"
		}
		fmt.Fprintf(&b, "%-14s %-14s %12.4g %10.3g %8s %8.3f\n", c.Feature, c.Method, c.Score, c.Threshold, d, c.PSI)
	}
	if p := rep.Predictions; p != nil {
		fmt.Fprintf(&b, "predictions: %d of %d columns drifted (share %.2f) against the validation split's; reference %d rows, current %d rows\n",
			p.Drifted, len(p.Columns), p.Share, p.ReferenceRows, p.CurrentRows)
		for _, c := range p.Columns {
			d := "no"
			if c.Drifted {
				d = "YES"
			}
			fmt.Fprintf(&b, "%-14s %-14s %12.4g %10.3g %8s %8.3f\n", c.Feature, c.Method, c.Score, c.Threshold, d, c.PSI)
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(&b, "%d files skipped (see %s)\n", len(rep.Skipped), JSONFile)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func rule(c drift.ColumnResult) string {
	switch {
	case c.Method == drift.MethodKS:
		return "p-value ≤ threshold"
	case c.Method.PValue():
		return "p-value < threshold"
	}
	return "distance ≥ threshold"
}

// plotFeature draws the reference and current distributions of one feature on the same bins,
// as shares, and writes a PNG.
func plotFeature(path string, c drift.ColumnResult, ref, cur []float64) error {
	p := plot.New()
	verdict := "no drift"
	if c.Drifted {
		verdict = "DRIFT"
	}
	p.Title.Text = fmt.Sprintf("%s — %s %.3g (threshold %g): %s", c.Feature, c.Method, c.Score, c.Threshold, verdict)
	p.Y.Label.Text = "share of images"
	p.X.Label.Text = c.Feature
	p.Legend.Top = true
	refColor := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	curColor := color.RGBA{R: 255, G: 127, B: 14, A: 255}
	if c.Kind == drift.Categorical {
		keys := unique(append(append([]float64(nil), ref...), cur...))
		w := vg.Points(18)
		for i, s := range []struct {
			name string
			v    []float64
			col  color.Color
		}{{fmt.Sprintf("reference (n=%d)", len(ref)), ref, refColor}, {fmt.Sprintf("current (n=%d)", len(cur)), cur, curColor}} {
			vals := make(plotter.Values, len(keys))
			for j, k := range keys {
				vals[j] = share(s.v, k)
			}
			bars, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return fmt.Errorf("driftreport: plot %s: %w", c.Feature, err)
			}
			bars.Color = s.col
			bars.LineStyle.Width = 0
			bars.Offset = vg.Length(2*i-1) * w / 2
			p.Add(bars)
			p.Legend.Add(s.name, bars)
		}
		var names []string
		for _, k := range keys {
			names = append(names, fmt.Sprint(k))
		}
		p.NominalX(names...)
	} else {
		edges := binEdges(ref, cur, 30)
		for _, s := range []struct {
			name string
			v    []float64
			col  color.RGBA
		}{{fmt.Sprintf("reference (n=%d)", len(ref)), ref, refColor}, {fmt.Sprintf("current (n=%d)", len(cur)), cur, curColor}} {
			xy := stepXY(s.v, edges)
			fill := color.NRGBA{R: s.col.R, G: s.col.G, B: s.col.B, A: 60}
			poly, err := plotter.NewPolygon(append(plotter.XYs{{X: edges[0], Y: 0}}, append(xy, plotter.XY{X: edges[len(edges)-1], Y: 0})...))
			if err != nil {
				return fmt.Errorf("driftreport: plot %s: %w", c.Feature, err)
			}
			poly.Color = fill
			poly.LineStyle.Width = 0
			line, err := plotter.NewLine(xy)
			if err != nil {
				return fmt.Errorf("driftreport: plot %s: %w", c.Feature, err)
			}
			line.Color = s.col
			line.Width = vg.Points(1.5)
			p.Add(poly, line)
			p.Legend.Add(s.name, line)
		}
		p.Add(plotter.NewGrid())
	}
	p.Y.Min = 0
	cv := vgimg.NewWith(vgimg.UseWH(6*vg.Inch, 3.2*vg.Inch), vgimg.UseDPI(96))
	p.Draw(draw.New(cv))
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: cv}).WriteTo(w)
		return err
	}); err != nil {
		return fmt.Errorf("driftreport: write %s: %w", path, err)
	}
	return nil
}

// binEdges is n equal-width bins over both samples (±0.5 when all values are equal).
func binEdges(a, b []float64, n int) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]float64{a, b} {
		for _, v := range s {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	e := make([]float64, n+1)
	for i := range e {
		e[i] = lo + (hi-lo)*float64(i)/float64(n)
	}
	return e
}

// stepXY is the histogram of x over edges as shares, drawn as a step line.
func stepXY(x, edges []float64) plotter.XYs {
	n := len(edges) - 1
	counts := make([]float64, n)
	for _, v := range x {
		i := int(float64(n) * (v - edges[0]) / (edges[n] - edges[0]))
		counts[min(max(i, 0), n-1)]++
	}
	var xy plotter.XYs
	for i, c := range counts {
		s := c / float64(max(len(x), 1))
		xy = append(xy, plotter.XY{X: edges[i], Y: s}, plotter.XY{X: edges[i+1], Y: s})
	}
	return xy
}

func unique(x []float64) []float64 {
	slices.Sort(x)
	return slices.Compact(x)
}

func share(x []float64, v float64) float64 {
	k := 0
	for _, y := range x {
		if y == v {
			k++
		}
	}
	return float64(k) / float64(max(len(x), 1))
}

type htmlRow struct {
	drift.ColumnResult
	Plot string
	Rule string
}

type htmlData struct {
	Report   *Report
	Rows     []htmlRow
	PredRows []htmlRow
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) },
	"num": func(v float64) string { return fmt.Sprintf("%.4g", v) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>catdog drift report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em} .verdict{font-size:1.2em;padding:.6em 1em;border-radius:6px;display:inline-block}
.drift{background:#fde2e1;color:#a11} .ok{background:#e3f5e1;color:#155}
table{border-collapse:collapse;margin:1em 0} td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} tr.d td{background:#fff3f2}
.plots img{width:560px;margin:.3em;border:1px solid #eee} .meta{color:#666;font-size:.9em}
</style></head><body>
<h1>Input drift: current photos against the training reference</h1>
<p class="verdict {{if .Report.DatasetDrift}}drift{{else}}ok{{end}}">
{{if .Report.DatasetDrift}}Dataset drift{{else}}No dataset drift{{end}}: {{.Report.Drifted}} of {{len .Report.Columns}} features drifted
({{pct .Report.Share}}; dataset drift from {{pct .Report.DriftShare}})</p>
<p class="meta">Model {{.Report.Model}} · reference: {{.Report.Reference}} ({{.Report.ReferenceRows}} images) ·
current: {{.Report.Current}} ({{.Report.CurrentRows}} images{{if .Report.Skipped}}, {{len .Report.Skipped}} files skipped{{end}}) ·
{{.Report.Created.Format "2006-01-02 15:04:05 MST"}} · methods and thresholds of Evidently's DataDriftPreset</p>
<table><tr><th>feature</th><th>method</th><th>score</th><th>threshold</th><th>rule</th><th>drifted</th><th>PSI</th></tr>
{{range .Rows}}<tr{{if .Drifted}} class="d"{{end}}><td><a href="#{{.Feature}}">{{.Feature}}</a></td><td>{{.Method}}</td>
<td class="n">{{num .Score}}</td><td class="n">{{.Threshold}}</td><td>{{.Rule}}</td><td>{{if .Drifted}}<b>yes</b>{{else}}no{{end}}</td><td class="n">{{num .PSI}}</td></tr>
{{end}}</table>
<div class="plots">{{range .Rows}}<img id="{{.Feature}}" src="{{.Plot}}" alt="histogram of {{.Feature}}: reference against current">{{end}}</div>
{{with .Report.Predictions}}<h2>Predictions: current answers against the validation split's</h2>
<p class="meta">{{.Drifted}} of {{len .Columns}} prediction columns drifted ({{pct .Share}}); reference {{.ReferenceRows}} predictions, current {{.CurrentRows}}; not counted in the input share above</p>
<table><tr><th>column</th><th>method</th><th>score</th><th>threshold</th><th>rule</th><th>drifted</th><th>PSI</th></tr>
{{range $.PredRows}}<tr{{if .Drifted}} class="d"{{end}}><td><a href="#{{.Feature}}">{{.Feature}}</a></td><td>{{.Method}}</td>
<td class="n">{{num .Score}}</td><td class="n">{{.Threshold}}</td><td>{{.Rule}}</td><td>{{if .Drifted}}<b>yes</b>{{else}}no{{end}}</td><td class="n">{{num .PSI}}</td></tr>
{{end}}</table>
<div class="plots">{{range $.PredRows}}<img id="{{.Feature}}" src="{{.Plot}}" alt="histogram of {{.Feature}}: validation split against current">{{end}}</div>
{{end}}{{if .Report.Skipped}}<h2>Skipped files</h2><table>{{range .Report.Skipped}}<tr><td>{{.Path}}</td><td>{{.Reason}}</td></tr>{{end}}</table>{{end}}
</body></html>
`))
