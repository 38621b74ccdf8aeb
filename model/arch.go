package model

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// ArchName names the architecture built by newNet; it is recorded in model.json.
const ArchName = "catdognet-v1"

// Arch describes the network's shape. The zero value is not valid; use DefaultArch.
type Arch struct {
	// Name must be ArchName.
	Name string `json:"name" yaml:"name"`
	// Widths are the output channels of the stem followed by one entry per stage. The stem
	// (stride 2, then 2x2 max-pool) divides the resolution by 4 and every stage but the last
	// halves it again: a 224 input ends at 224 / 2^(len(Widths)+1) = 14 for four widths.
	Widths []int64 `json:"widths" yaml:"widths"`
	// Dropout is applied before the linear head during training.
	Dropout float64 `json:"dropout" yaml:"dropout"`
	// Classes is the number of outputs of the linear head.
	Classes int64 `json:"classes" yaml:"classes"`
}

// DefaultArch is a four-stage CNN sized for training on a 2-core CPU.
func DefaultArch() Arch {
	return Arch{Name: ArchName, Widths: []int64{32, 64, 128, 256}, Dropout: 0.3, Classes: 2}
}

// Validate reports whether the architecture can be built.
func (a Arch) Validate() error {
	if a.Name != ArchName {
		return fmt.Errorf("model: unknown architecture %q (this build knows %q)", a.Name, ArchName)
	}
	if len(a.Widths) < 2 {
		return fmt.Errorf("model: architecture needs at least 2 widths, got %d", len(a.Widths))
	}
	for _, w := range a.Widths {
		if w <= 0 || w > 4096 {
			return fmt.Errorf("model: width %d out of range", w)
		}
	}
	if a.Dropout < 0 || a.Dropout >= 1 {
		return fmt.Errorf("model: dropout %v out of [0,1)", a.Dropout)
	}
	if a.Classes < 2 {
		return fmt.Errorf("model: need at least 2 classes, got %d", a.Classes)
	}
	return nil
}

// net is the CNN: conv-BN-ReLU blocks, max-pooling between stages, and a head of global
// average pooling, dropout and one linear layer.
//
//	stem:   conv3x3/2 (3 -> w0) BN ReLU, max-pool 2x2
//	stage i (i >= 1): conv3x3 (w[i-1] -> w[i]) BN ReLU, max-pool 2x2 except after the last stage
//	last:   one more conv3x3 (w[last] -> w[last]) BN ReLU
//	head:   global average pool, dropout, linear (w[last] -> classes)
type net struct {
	arch   Arch
	blocks []*convBN
	head   *nn.Linear
}

type convBN struct {
	conv *nn.Conv2D
	bn   *nn.BatchNorm
	pool bool // max-pool 2x2 after the activation
}

func newNet(root *nn.Path, a Arch) *net {
	n := &net{arch: a}
	conv := func(name string, in, out, stride int64, pool bool) {
		p := root.Sub(name)
		cfg := nn.DefaultConv2DConfig()
		cfg.Stride = []int64{stride, stride}
		cfg.Padding = []int64{1, 1}
		cfg.Bias = false
		// He (Kaiming) uniform initialisation for ReLU: gotch's default "KaimingUniform" is
		// in fact a standard normal, far too large for a fan-in of hundreds.
		bound := math.Sqrt(6 / float64(in*3*3))
		cfg.WsInit = nn.NewUniformInit(-bound, bound)
		bn := nn.DefaultBatchNormConfig()
		bn.WsInit = nn.NewConstInit(1) // PyTorch's default; gotch's is uniform(0, 1)
		n.blocks = append(n.blocks, &convBN{
			conv: nn.NewConv2D(p.Sub("conv"), in, out, 3, cfg),
			bn:   nn.BatchNorm2D(p.Sub("bn"), out, bn),
			pool: pool,
		})
	}
	conv("stem", 3, a.Widths[0], 2, true)
	last := len(a.Widths) - 1
	for i := 1; i <= last; i++ {
		conv(fmt.Sprintf("stage%d", i), a.Widths[i-1], a.Widths[i], 1, i < last)
	}
	conv(fmt.Sprintf("stage%d_b", last), a.Widths[last], a.Widths[last], 1, false)
	// PyTorch's default for Linear: uniform(±1/sqrt(fan_in)) for weights and bias.
	head := nn.DefaultLinearConfig()
	hb := 1 / math.Sqrt(float64(a.Widths[last]))
	head.WsInit = nn.NewUniformInit(-hb, hb)
	head.BsInit = nn.NewUniformInit(-hb, hb)
	n.head = nn.NewLinear(root.Sub("head"), a.Widths[last], a.Classes, head)
	return n
}

// forward returns logits for x (N x 3 x S x S). x is not dropped.
func (n *net) forward(x *ts.Tensor, train bool) *ts.Tensor {
	f := n.features(x, train)
	if train && n.arch.Dropout > 0 {
		d := ts.MustDropout(f, n.arch.Dropout, true)
		f.MustDrop()
		f = d
	}
	out := n.head.Forward(f)
	f.MustDrop()
	return out
}

// features returns the penultimate layer for x: the globally average-pooled activations of the
// last stage (N x widths[last]). x is not dropped.
func (n *net) features(x *ts.Tensor, train bool) *ts.Tensor {
	h := x
	for i, b := range n.blocks {
		c := b.conv.ForwardT(h, train)
		if i > 0 {
			h.MustDrop()
		}
		nb := b.bn.ForwardT(c, train)
		c.MustDrop()
		h = nb.MustRelu(true)
		if b.pool {
			p := h.MustMaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, true)
			h = p
		}
	}
	g := h.MustAdaptiveAvgPool2d([]int64{1, 1}, true)
	return g.MustFlatten(1, -1, true)
}
