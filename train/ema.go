package train

import (
	"fmt"
	"sort"

	"github.com/sugarme/gotch/ts"

	"github.com/catdog-mlops/catdog/model"
)

// ema keeps an exponential moving average of a network's weights and batch-norm statistics in
// a second network of the same architecture. Evaluating and saving the average instead of the
// raw weights smooths out the epoch-to-epoch noise of a small data set.
type ema struct {
	net   *model.Network
	pairs [][2]ts.Tensor // {average, live}
	decay float64
}

func newEMA(live *model.Network, arch model.Arch, decay float64) (*ema, error) {
	avg, err := model.NewNetwork(arch)
	if err != nil {
		return nil, err
	}
	lv, av := live.VarStore().Variables(), avg.VarStore().Variables()
	if len(lv) != len(av) {
		avg.Close()
		return nil, fmt.Errorf("train: ema: %d variables vs %d", len(av), len(lv))
	}
	names := make([]string, 0, len(lv))
	for k := range lv {
		names = append(names, k)
	}
	sort.Strings(names)
	e := &ema{net: avg, decay: decay}
	for _, k := range names {
		a, ok := av[k]
		if !ok {
			avg.Close()
			return nil, fmt.Errorf("train: ema: no variable %q", k)
		}
		e.pairs = append(e.pairs, [2]ts.Tensor{a, lv[k]})
	}
	e.copyFrom()
	return e, nil
}

func (e *ema) copyFrom() {
	model.NoGrad(func() {
		for i := range e.pairs {
			e.pairs[i][0].Copy_(&e.pairs[i][1])
		}
	})
}

// update moves the average towards the live weights; the decay ramps up over the first steps
// so that the average does not remember the random initialisation.
func (e *ema) update(step int) {
	d := min(e.decay, float64(1+step)/float64(10+step))
	model.WithFloatScalar(1-d, func(w *ts.Scalar) {
		model.NoGrad(func() {
			for i := range e.pairs {
				e.pairs[i][0].MustLerp_(&e.pairs[i][1], w)
			}
		})
	})
}

func (e *ema) close() { e.net.Close() }
