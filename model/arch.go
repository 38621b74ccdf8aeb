package model

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// Architecture names, recorded in model.json. Every name stays loadable.
const (
	// ArchName is catdognet-v1, the plain CNN built by newNet.
	ArchName = "catdognet-v1"
	// ArchResNet is catdognet-res1, the residual CNN built by newResNet.
	ArchResNet = "catdognet-res1"
)

// Arch describes the network's shape. The zero value is not valid; use DefaultArch.
type Arch struct {
	// Name is ArchName or ArchResNet.
	Name string `json:"name" yaml:"name"`
	// Widths are the output channels of the stem followed by one entry per stage. The stem
	// (stride 2, then 2x2 max-pool) divides the resolution by 4 and every stage but the last
	// halves it again: a 224 input ends at 224 / 2^(len(Widths)+1) = 14 for four widths.
	Widths []int64 `json:"widths" yaml:"widths"`
	// Dropout is applied before the linear head during training.
	Dropout float64 `json:"dropout" yaml:"dropout"`
	// Classes is the number of outputs of the linear head.
	Classes int64 `json:"classes" yaml:"classes"`
	// Blocks is the number of residual blocks of each stage (ArchResNet only: one entry per
	// width; empty means one block per stage). catdognet-v1 takes none.
	Blocks []int `json:"blocks,omitempty" yaml:"blocks,omitempty"`
}

// DefaultArch is a four-stage CNN sized for training on a 2-core CPU.
func DefaultArch() Arch {
	return Arch{Name: ArchName, Widths: []int64{32, 64, 128, 256}, Dropout: 0.3, Classes: 2}
}

// Validate reports whether the architecture can be built.
func (a Arch) Validate() error {
	switch a.Name {
	case ArchName:
		if len(a.Blocks) > 0 {
			return fmt.Errorf("model: %s takes no blocks (got %v)", ArchName, a.Blocks)
		}
	case ArchResNet:
		if len(a.Blocks) > 0 && len(a.Blocks) != len(a.Widths) {
			return fmt.Errorf("model: %s needs one blocks entry per width: %d widths, %d blocks", ArchResNet, len(a.Widths), len(a.Blocks))
		}
		for _, b := range a.Blocks {
			if b < 1 || b > 16 {
				return fmt.Errorf("model: blocks per stage %d out of [1,16]", b)
			}
		}
	default:
		return fmt.Errorf("model: unknown architecture %q (this build knows %q and %q)", a.Name, ArchName, ArchResNet)
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
		n.blocks = append(n.blocks, &convBN{
			conv: newConv(p.Sub("conv"), in, out, 3, stride),
			bn:   newBN(p.Sub("bn"), out, false),
			pool: pool,
		})
	}
	conv("stem", 3, a.Widths[0], 2, true)
	last := len(a.Widths) - 1
	for i := 1; i <= last; i++ {
		conv(fmt.Sprintf("stage%d", i), a.Widths[i-1], a.Widths[i], 1, i < last)
	}
	conv(fmt.Sprintf("stage%d_b", last), a.Widths[last], a.Widths[last], 1, false)
	n.head = newHead(root.Sub("head"), a.Widths[last], a.Classes)
	return n
}

// forward returns logits for x (N x 3 x S x S). x is not dropped.
func (n *net) forward(x *ts.Tensor, train bool) *ts.Tensor {
	return headForward(n.features(x, train), n.head, n.arch.Dropout, train)
}

func (n *net) linear() *nn.Linear { return n.head }

// headForward applies dropout (training only) and the linear head to the pooled features f,
// which it drops.
func headForward(f *ts.Tensor, head *nn.Linear, dropout float64, train bool) *ts.Tensor {
	if train && dropout > 0 {
		d := ts.MustDropout(f, dropout, true)
		f.MustDrop()
		f = d
	}
	out := head.Forward(f)
	f.MustDrop()
	return out
}

// newHead is the linear head with PyTorch's default initialisation: uniform(±1/sqrt(fan_in))
// for weights and bias.
func newHead(p *nn.Path, in, classes int64) *nn.Linear {
	head := nn.DefaultLinearConfig()
	hb := 1 / math.Sqrt(float64(in))
	head.WsInit = nn.NewUniformInit(-hb, hb)
	head.BsInit = nn.NewUniformInit(-hb, hb)
	return nn.NewLinear(p, in, classes, head)
}

// newConv is a bias-free convolution (k x k, padding k/2) with He (Kaiming) uniform
// initialisation for ReLU: gotch's default "KaimingUniform" is in fact a standard normal, far
// too large for a fan-in of hundreds.
func newConv(p *nn.Path, in, out, k, stride int64) *nn.Conv2D {
	cfg := nn.DefaultConv2DConfig()
	cfg.Stride = []int64{stride, stride}
	cfg.Padding = []int64{k / 2, k / 2}
	cfg.Bias = false
	bound := math.Sqrt(6 / float64(in*k*k))
	cfg.WsInit = nn.NewUniformInit(-bound, bound)
	return nn.NewConv2D(p, in, out, k, cfg)
}

// newBN is batch norm with PyTorch's default initialisation (gamma 1; gotch's is uniform(0, 1)),
// or gamma 0 with zeroGamma (the last BN of a residual branch, so every block starts as identity).
func newBN(p *nn.Path, c int64, zeroGamma bool) *nn.BatchNorm {
	bn := nn.DefaultBatchNormConfig()
	bn.WsInit = nn.NewConstInit(1)
	if zeroGamma {
		bn.WsInit = nn.NewConstInit(0)
	}
	return nn.BatchNorm2D(p, c, bn)
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
