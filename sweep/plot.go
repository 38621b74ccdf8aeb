package sweep

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// axis maps one parameter (or the metric) to [0, 1].
type axis struct {
	name   string
	norm   func(v any) (float64, bool)
	labels []string // tick labels at ticks
	ticks  []float64
}

// PlotParallel draws a parallel-coordinates chart of the trials: one vertical axis per
// parameter and one for the metric (rightmost), one line per trial through its values,
// coloured by its metric (dark red = best); pruned trials are dashed, the best trial thick.
// Numeric axes are linear (logarithmic when the spec's range is), others categorical.
func PlotParallel(path string, s *Spec, st *State) error {
	var trials []TrialState
	for _, t := range st.Trials {
		if (t.Status == Done || t.Status == Pruned) && t.BestEpoch > 0 {
			trials = append(trials, t)
		}
	}
	if len(trials) == 0 {
		return fmt.Errorf("sweep: plot: no finished trial")
	}
	var axes []axis
	for _, name := range s.Names() {
		var vals []any
		for _, t := range trials {
			vals = append(vals, t.Params[name])
		}
		axes = append(axes, paramAxis(name, s.Parameters[name], vals))
	}
	var ms []any
	for _, t := range trials {
		ms = append(ms, t.Best)
	}
	mAxis := paramAxis(s.Metric, Param{}, ms)
	axes = append(axes, mAxis)

	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range trials {
		lo, hi = math.Min(lo, t.Best), math.Max(hi, t.Best)
	}
	cmap := moreland.SmoothBlueRed()
	cmap.SetMin(0)
	cmap.SetMax(1)
	best := st.Best(s)

	p := plot.New()
	bestV, worstV := hi, lo
	if s.Goal == Minimize {
		bestV, worstV = lo, hi
	}
	p.Title.Text = fmt.Sprintf("Sweep: %d trials, %s (%s) — best trial %d (thick)\nline colour: %s from %.4g (worst, blue) to %.4g (best, red); dashed: stopped early by halving",
		len(trials), s.Metric, s.Goal, best.Index, s.Metric, worstV, bestV)
	p.Y.Min, p.Y.Max = -0.08, 1.08
	p.X.Min, p.X.Max = -0.3, float64(len(axes)-1)+0.3
	p.Y.Tick.Marker = plot.ConstantTicks{}
	p.Y.Label.Text = "scaled to each axis (min–max)"
	var xt plot.ConstantTicks
	for i, a := range axes {
		xt = append(xt, plot.Tick{Value: float64(i), Label: a.name})
		// the axis itself
		ln, err := plotter.NewLine(plotter.XYs{{X: float64(i), Y: 0}, {X: float64(i), Y: 1}})
		if err != nil {
			return fmt.Errorf("sweep: plot: %w", err)
		}
		ln.Color, ln.Width = color.Gray{Y: 60}, vg.Points(1.5)
		p.Add(ln)
		var lab plotter.XYLabels
		for k, tv := range a.ticks {
			lab.XYs = append(lab.XYs, plotter.XY{X: float64(i) + 0.03, Y: tv})
			lab.Labels = append(lab.Labels, a.labels[k])
		}
		if len(lab.Labels) > 0 {
			l, err := plotter.NewLabels(lab)
			if err != nil {
				return fmt.Errorf("sweep: plot: %w", err)
			}
			for k := range l.TextStyle {
				l.TextStyle[k].Font.Size = vg.Points(8)
				l.TextStyle[k].YAlign = draw.YCenter
			}
			p.Add(l)
		}
	}
	p.X.Tick.Marker = xt
	// worst first, so the best lines are drawn on top
	sort.SliceStable(trials, func(a, b int) bool { return s.Better(trials[b].Best, trials[a].Best) })
	for _, t := range trials {
		var xy plotter.XYs
		for i, a := range axes {
			v := any(t.Best)
			if i < len(axes)-1 {
				v = t.Params[a.name]
			}
			y, _ := a.norm(v)
			xy = append(xy, plotter.XY{X: float64(i), Y: y})
		}
		ln, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("sweep: plot: %w", err)
		}
		q := 0.5
		if hi > lo {
			q = (t.Best - lo) / (hi - lo)
		}
		if s.Goal == Minimize {
			q = 1 - q
		}
		c, err := cmap.At(q)
		if err != nil {
			c = color.Black
		}
		ln.Color, ln.Width = c, vg.Points(1.5)
		if t.Status == Pruned {
			ln.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		if best != nil && t.Index == best.Index {
			ln.Width = vg.Points(4)
		}
		p.Add(ln)
	}
	if err := p.Save(vg.Length(max(6, 2*len(axes)))*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("sweep: plot: %w", err)
	}
	return nil
}

// paramAxis builds the axis of one parameter from its spec and the values the trials used.
func paramAxis(name string, spec Param, vals []any) axis {
	nums := make([]float64, 0, len(vals))
	numeric := true
	for _, v := range vals {
		f, ok := toFloat(v)
		if !ok {
			numeric = false
			break
		}
		nums = append(nums, f)
	}
	if numeric {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, f := range nums {
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
		if spec.Min != nil && spec.Max != nil { // a range: the axis spans the whole range
			lo, hi = math.Min(lo, *spec.Min), math.Max(hi, *spec.Max)
		}
		// a log range, or a list of positive values spanning two decades or more
		logScale := lo > 0 && (spec.Log || (len(spec.Values) > 0 && hi/lo >= 100))
		tr := func(f float64) float64 { return f }
		if logScale {
			tr = math.Log
		}
		a, b := tr(lo), tr(hi)
		norm := func(v any) (float64, bool) {
			f, ok := toFloat(v)
			if !ok {
				return 0.5, false
			}
			if b == a {
				return 0.5, true
			}
			return (tr(f) - a) / (b - a), true
		}
		ax := axis{name: name, norm: norm}
		if lo == hi {
			ax.ticks, ax.labels = []float64{0.5}, []string{fmtNum(lo)}
		} else {
			ax.ticks, ax.labels = []float64{0, 1}, []string{fmtNum(lo), fmtNum(hi)}
		}
		return ax
	}
	// categorical: the spec's order of values (or first use), evenly spaced
	var cats []string
	seen := map[string]bool{}
	add := func(v any) {
		if s := FormatValue(v); !seen[s] {
			seen[s] = true
			cats = append(cats, s)
		}
	}
	for _, v := range spec.Values {
		add(v)
	}
	for _, v := range vals {
		add(v)
	}
	pos := map[string]float64{}
	ax := axis{name: name}
	for i, c := range cats {
		y := 0.5
		if len(cats) > 1 {
			y = float64(i) / float64(len(cats)-1)
		}
		pos[c] = y
		ax.ticks, ax.labels = append(ax.ticks, y), append(ax.labels, c)
	}
	ax.norm = func(v any) (float64, bool) { y, ok := pos[FormatValue(v)]; return y, ok }
	return ax
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }
