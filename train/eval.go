package train

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// ClassMetrics are one class's precision, recall and F1 (one-vs-rest).
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Evaluation summarises predictions against labels.
type Evaluation struct {
	Classes  []string       `json:"classes"`
	N        int            `json:"n"`
	Accuracy float64        `json:"accuracy"`
	Loss     float64        `json:"loss"`
	PerClass []ClassMetrics `json:"per_class"`
	// Confusion[t][p] counts images of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
}

// Evaluate computes accuracy, mean cross-entropy, per-class metrics and the confusion matrix
// from class probabilities (one row per image) and integer labels.
func Evaluate(classes []string, labels []int, probs [][]float32) (Evaluation, error) {
	if len(labels) != len(probs) {
		return Evaluation{}, fmt.Errorf("train: %d labels for %d predictions", len(labels), len(probs))
	}
	k := len(classes)
	e := Evaluation{Classes: classes, N: len(labels), Confusion: make([][]int, k)}
	for i := range e.Confusion {
		e.Confusion[i] = make([]int, k)
	}
	correct := 0
	for i, row := range probs {
		if len(row) != k {
			return Evaluation{}, fmt.Errorf("train: prediction %d has %d classes, want %d", i, len(row), k)
		}
		t := labels[i]
		if t < 0 || t >= k {
			return Evaluation{}, fmt.Errorf("train: label %d out of range", t)
		}
		p := argmax(row)
		e.Confusion[t][p]++
		if p == t {
			correct++
		}
		e.Loss -= math.Log(math.Max(float64(row[t]), 1e-12))
	}
	if e.N > 0 {
		e.Accuracy = float64(correct) / float64(e.N)
		e.Loss /= float64(e.N)
	}
	for c := 0; c < k; c++ {
		tp, fp, fn := e.Confusion[c][c], 0, 0
		for o := 0; o < k; o++ {
			if o != c {
				fp += e.Confusion[o][c]
				fn += e.Confusion[c][o]
			}
		}
		m := ClassMetrics{Class: classes[c], Support: tp + fn}
		m.Precision = ratio(tp, tp+fp)
		m.Recall = ratio(tp, tp+fn)
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		e.PerClass = append(e.PerClass, m)
	}
	return e, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// Metrics flattens the evaluation into metric names with the given prefix (e.g. "test_").
func (e Evaluation) Metrics(prefix string) map[string]float64 {
	m := map[string]float64{prefix + "accuracy": e.Accuracy, prefix + "loss": e.Loss}
	for _, c := range e.PerClass {
		m[prefix+c.Class+"_precision"] = c.Precision
		m[prefix+c.Class+"_recall"] = c.Recall
		m[prefix+c.Class+"_f1"] = c.F1
	}
	return m
}

// WriteTable writes a readable report: accuracy, per-class metrics and the confusion matrix.
func (e Evaluation) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "images: %d   accuracy: %.2f%%   loss: %.4f\n\n", e.N, 100*e.Accuracy, e.Loss)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tprecision\trecall\tf1\tsupport\t")
	for _, c := range e.PerClass {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\t\n", c.Class, c.Precision, c.Recall, c.F1, c.Support)
	}
	tw.Flush()
	b.WriteString("\nconfusion matrix (rows: true, columns: predicted)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range e.Classes {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprintln(tw)
	for t, row := range e.Confusion {
		fmt.Fprintf(tw, "%s\t", e.Classes[t])
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
