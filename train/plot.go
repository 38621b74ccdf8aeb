package train

import (
	"fmt"
	"image/color"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotConfusion draws the confusion matrix as a heat map with counts and writes it as a PNG.
func plotConfusion(path string, e Evaluation) error {
	k := len(e.Classes)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Confusion matrix (test, n=%d, accuracy %.1f%%)", e.N, 100*e.Accuracy)
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	maxv := 1
	for _, row := range e.Confusion {
		for _, v := range row {
			maxv = max(maxv, v)
		}
	}
	var labels plotter.XYLabels
	for t := 0; t < k; t++ {
		for pr := 0; pr < k; pr++ {
			v := e.Confusion[t][pr]
			// Cell: a filled square whose blue intensity grows with the count.
			shade := uint8(255 - 200*v/maxv)
			poly, err := plotter.NewPolygon(plotter.XYs{
				{X: float64(pr), Y: float64(k - 1 - t)}, {X: float64(pr + 1), Y: float64(k - 1 - t)},
				{X: float64(pr + 1), Y: float64(k - t)}, {X: float64(pr), Y: float64(k - t)},
			})
			if err != nil {
				return fmt.Errorf("train: plot: %w", err)
			}
			poly.Color = color.RGBA{R: shade, G: shade, B: 255, A: 255}
			poly.LineStyle.Color = color.Gray{Y: 80}
			p.Add(poly)
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(pr) + 0.5, Y: float64(k-1-t) + 0.5})
			labels.Labels = append(labels.Labels, fmt.Sprint(v))
		}
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].YAlign = draw.YCenter
		l.TextStyle[i].Font.Size = vg.Points(16)
	}
	p.Add(l)
	ticks := func(rev bool) plot.ConstantTicks {
		var t plot.ConstantTicks
		for i, c := range e.Classes {
			pos := float64(i) + 0.5
			if rev {
				pos = float64(k-1-i) + 0.5
			}
			t = append(t, plot.Tick{Value: pos, Label: c})
		}
		return t
	}
	p.X.Tick.Marker = ticks(false)
	p.Y.Tick.Marker = ticks(true)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, float64(k), 0, float64(k)
	if err := p.Save(5*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("train: save %s: %w", path, err)
	}
	return nil
}

// plotCurves draws training and validation loss and accuracy per epoch, side by side, as a PNG.
func plotCurves(path string, epochs []EpochStats) error {
	mk := func(title, ylabel string, train, val func(EpochStats) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = ylabel
		p.Legend.Top = title == "Loss" // loss falls, accuracy rises: keep the legend off the curves
		p.Legend.Left = false
		tr, va := make(plotter.XYs, len(epochs)), make(plotter.XYs, len(epochs))
		for i, e := range epochs {
			tr[i] = plotter.XY{X: float64(e.Epoch), Y: train(e)}
			va[i] = plotter.XY{X: float64(e.Epoch), Y: val(e)}
		}
		for _, s := range []struct {
			name string
			xy   plotter.XYs
			c    color.Color
		}{{"train", tr, color.RGBA{R: 31, G: 119, B: 180, A: 255}}, {"validation", va, color.RGBA{R: 255, G: 127, B: 14, A: 255}}} {
			line, points, err := plotter.NewLinePoints(s.xy)
			if err != nil {
				return nil, err
			}
			line.Color, points.Color = s.c, s.c
			line.Width = vg.Points(1.5)
			p.Add(line, points)
			p.Legend.Add(s.name, line, points)
		}
		p.Add(plotter.NewGrid())
		return p, nil
	}
	loss, err := mk("Loss", "cross-entropy", func(e EpochStats) float64 { return e.TrainLoss }, func(e EpochStats) float64 { return e.ValLoss })
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	acc, err := mk("Accuracy", "accuracy", func(e EpochStats) float64 { return e.TrainAcc }, func(e EpochStats) float64 { return e.ValAcc })
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	const w, h = 10 * vg.Inch, 4 * vg.Inch
	img := vgimgCanvas(w, h)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{loss, acc}}, tiles, draw.New(img))
	loss.Draw(canvases[0][0])
	acc.Draw(canvases[0][1])
	return savePNG(path, img)
}

// curvesCSV returns the per-epoch figures as CSV: epoch, losses, accuracies, learning rate.
func curvesCSV(epochs []EpochStats) []byte {
	var b strings.Builder
	b.WriteString("epoch,train_loss,val_loss,train_accuracy,val_accuracy,lr\n")
	for _, e := range epochs {
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s,%s\n", e.Epoch, csvFloat(e.TrainLoss), csvFloat(e.ValLoss),
			csvFloat(e.TrainAcc), csvFloat(e.ValAcc), csvFloat(e.LR))
	}
	return []byte(b.String())
}

func csvFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
