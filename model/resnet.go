package model

import (
	"fmt"

	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"
)

// resNet is catdognet-res1, a small residual CNN (ResNet "basic blocks" with batch norm) sized
// for a 2-core CPU: the stem divides the resolution by 4 at once, so the blocks run at 1/4,
// 1/8, 1/16 and 1/32 of the input (32, 16, 8 and 4 pixels at 128).
//
//	stem:      conv3x3/2 (3 -> w0) BN ReLU, max-pool 2x2
//	stage 0:   blocks[0] basic blocks at w0
//	stage i>0: blocks[i] basic blocks at w[i]; the first has stride 2 and a conv1x1/2 + BN shortcut
//	head:      global average pool, dropout, linear (w[last] -> classes)
//
// A basic block is conv3x3 BN ReLU conv3x3 BN, added to the shortcut, then ReLU; the second BN
// starts at gamma 0 so that every block starts as the identity (Goyal et al., 2017).
type resNet struct {
	arch   Arch
	stem   *convBN
	blocks []*basicBlock
	head   *nn.Linear
}

type basicBlock struct {
	conv1, conv2 *nn.Conv2D
	bn1, bn2     *nn.BatchNorm
	// down is the projection shortcut of a block that changes stride or width (nil: identity).
	down   *nn.Conv2D
	downBN *nn.BatchNorm
}

func newResNet(root *nn.Path, a Arch) *resNet {
	n := &resNet{arch: a}
	p := root.Sub("stem")
	n.stem = &convBN{conv: newConv(p.Sub("conv"), 3, a.Widths[0], 3, 2), bn: newBN(p.Sub("bn"), a.Widths[0], false), pool: true}
	in := a.Widths[0]
	for s, w := range a.Widths {
		count := 1
		if len(a.Blocks) > 0 {
			count = a.Blocks[s]
		}
		for b := 0; b < count; b++ {
			stride := int64(1)
			if s > 0 && b == 0 {
				stride = 2
			}
			bp := root.Sub(fmt.Sprintf("stage%d", s)).Sub(fmt.Sprintf("block%d", b))
			blk := &basicBlock{
				conv1: newConv(bp.Sub("conv1"), in, w, 3, stride),
				bn1:   newBN(bp.Sub("bn1"), w, false),
				conv2: newConv(bp.Sub("conv2"), w, w, 3, 1),
				bn2:   newBN(bp.Sub("bn2"), w, true),
			}
			if stride != 1 || in != w {
				blk.down = newConv(bp.Sub("down"), in, w, 1, stride)
				blk.downBN = newBN(bp.Sub("down_bn"), w, false)
			}
			n.blocks = append(n.blocks, blk)
			in = w
		}
	}
	n.head = newHead(root.Sub("head"), in, a.Classes)
	return n
}

func (n *resNet) forward(x *ts.Tensor, train bool) *ts.Tensor {
	return headForward(n.features(x, train), n.head, n.arch.Dropout, train)
}

func (n *resNet) linear() *nn.Linear { return n.head }

// features returns the globally average-pooled activations of the last stage. x is not dropped.
func (n *resNet) features(x *ts.Tensor, train bool) *ts.Tensor {
	c := n.stem.conv.ForwardT(x, train)
	b := n.stem.bn.ForwardT(c, train)
	c.MustDrop()
	r := b.MustRelu(true)
	h := r.MustMaxPool2d([]int64{2, 2}, []int64{2, 2}, []int64{0, 0}, []int64{1, 1}, false, true)
	for _, blk := range n.blocks {
		next := blk.forward(h, train)
		h.MustDrop()
		h = next
	}
	g := h.MustAdaptiveAvgPool2d([]int64{1, 1}, true)
	return g.MustFlatten(1, -1, true)
}

// forward returns ReLU(branch(x) + shortcut(x)); x is not dropped.
func (b *basicBlock) forward(x *ts.Tensor, train bool) *ts.Tensor {
	c1 := b.conv1.ForwardT(x, train)
	n1 := b.bn1.ForwardT(c1, train)
	c1.MustDrop()
	a1 := n1.MustRelu(true)
	c2 := b.conv2.ForwardT(a1, train)
	a1.MustDrop()
	out := b.bn2.ForwardT(c2, train)
	c2.MustDrop()
	// Out of place: gotch's in-place ops (MustAdd_) replace the tensor's C handle without
	// freeing the old one, which then keeps the step's whole autograd graph alive (a leak of
	// the batch's activations at every training step).
	var sum *ts.Tensor
	if b.down != nil {
		d := b.down.ForwardT(x, train)
		s := b.downBN.ForwardT(d, train)
		d.MustDrop()
		sum = out.MustAdd(s, true)
		s.MustDrop()
	} else {
		sum = out.MustAdd(x, true)
	}
	return sum.MustRelu(true)
}
