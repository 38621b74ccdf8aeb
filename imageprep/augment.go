package imageprep

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Augment is train-time augmentation of one cached image: a random resized crop (as torchvision's
// RandomResizedCrop), a random horizontal flip and a mild colour jitter (brightness, contrast,
// saturation, applied in that order and clamped like torchvision's ColorJitter), fused with
// normalisation into one pass over the output. A zero field disables its step.
type Augment struct {
	// Scale is the range of the crop area as a fraction of the image area.
	Scale [2]float64
	// Ratio is the range of the crop aspect ratio (width/height), sampled log-uniformly.
	Ratio [2]float64
	// FlipProb is the probability of a horizontal flip.
	FlipProb float64
	// Brightness, Contrast and Saturation are jitter strengths: each factor is uniform in
	// [max(0, 1-v), 1+v].
	Brightness, Contrast, Saturation float64
	// EraseProb is the probability of random erasing (Zhong et al., 2017; torchvision's
	// RandomErasing): a rectangle of the output, of EraseScale of its area and an aspect ratio
	// log-uniform in [0.3, 3.3], is set to 0, the mean pixel after normalisation.
	EraseProb float64
	// EraseScale is the range of the erased area as a fraction of the output (default [0.02, 0.25]).
	EraseScale [2]float64
}

// DefaultAugment returns Scale [0.5, 1], Ratio [3/4, 4/3], FlipProb 0.5 and jitter 0.2 for
// brightness, contrast and saturation: mild enough for a small CNN trained on a few thousand photos.
func DefaultAugment() Augment {
	return Augment{
		Scale: [2]float64{0.5, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3},
		FlipProb: 0.5, Brightness: 0.2, Contrast: 0.2, Saturation: 0.2,
	}
}

// crop picks a crop rectangle like torchvision's RandomResizedCrop.get_params: up to ten tries at
// a random area and log-uniform ratio, then the whole image.
func (a Augment) crop(rng *rand.Rand, size int) (x0, y0, w, h int) {
	if a.Scale == ([2]float64{}) {
		return 0, 0, size, size
	}
	area := float64(size * size)
	lr0, lr1 := math.Log(a.Ratio[0]), math.Log(a.Ratio[1])
	if a.Ratio == ([2]float64{}) {
		lr0, lr1 = 0, 0
	}
	for try := 0; try < 10; try++ {
		target := area * uniform(rng, a.Scale[0], a.Scale[1])
		ratio := math.Exp(uniform(rng, lr0, lr1))
		w = int(math.Round(math.Sqrt(target * ratio)))
		h = int(math.Round(math.Sqrt(target / ratio)))
		if w > 0 && h > 0 && w <= size && h <= size {
			return rng.IntN(size - w + 1), rng.IntN(size - h + 1), w, h
		}
	}
	return 0, 0, size, size
}

func uniform(rng *rand.Rand, lo, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	return lo + (hi-lo)*rng.Float64()
}

func jitterFactor(rng *rand.Rand, v float64) float32 {
	if v <= 0 {
		return 1
	}
	return float32(uniform(rng, math.Max(0, 1-v), 1+v))
}

// Apply augments src (srcSize×srcSize×3 bytes, HWC RGB, as cached by Prepare) into dst
// (3×outSize×outSize floats, CHW, normalised with spec's mean and std). The output depends only on
// the inputs and the state of rng, so the same seed reproduces an epoch exactly. Values lie in
// [(0-Mean)/Std, (1-Mean)/Std] per channel. Apply allocates nothing; it is safe to call from many
// goroutines with different rngs and dsts.
func (a Augment) Apply(rng *rand.Rand, src []byte, srcSize, outSize int, spec Spec, dst []float32) {
	n := outSize * outSize
	if len(src) < srcSize*srcSize*3 || len(dst) < 3*n {
		panic(fmt.Sprintf("imageprep: Augment.Apply: src %d bytes for size %d, dst %d floats for size %d", len(src), srcSize, len(dst), outSize))
	}
	x0, y0, cw, ch := a.crop(rng, srcSize)
	flip := a.FlipProb > 0 && rng.Float64() < a.FlipProb
	bf := jitterFactor(rng, a.Brightness)
	cf := jitterFactor(rng, a.Contrast)
	sf := jitterFactor(rng, a.Saturation)

	// Bilinear resample of the crop (half-pixel centres, edges clamped) into planar [0,1] floats.
	// The per-column source offsets and weights go in the (not yet used) blue plane as scratch.
	R, G, B := dst[:n:n], dst[n:2*n:2*n], dst[2*n:3*n:3*n]
	type tap struct {
		i0, i1 int // byte offsets 3*index
		w      float32
	}
	taps := func(o, start, length int) tap {
		s := (float64(o)+0.5)*float64(length)/float64(outSize) - 0.5
		if s < 0 {
			s = 0
		}
		i0 := int(s)
		if i0 > length-1 {
			i0 = length - 1
		}
		i1 := min(i0+1, length-1)
		return tap{3 * (start + i0), 3 * (start + i1), float32(s - float64(i0))}
	}
	cols := make([]tap, 0, 256) // small; escapes only when outSize > 256
	if outSize > cap(cols) {
		cols = make([]tap, 0, outSize)
	}
	for ox := 0; ox < outSize; ox++ {
		sx := ox
		if flip {
			sx = outSize - 1 - ox
		}
		cols = append(cols, taps(sx, x0, cw))
	}
	const inv = 1.0 / 255
	stride := srcSize * 3
	for oy := 0; oy < outSize; oy++ {
		ty := taps(oy, y0, ch)
		r0 := src[ty.i0/3*stride : ty.i0/3*stride+stride]
		r1 := src[ty.i1/3*stride : ty.i1/3*stride+stride]
		wy := ty.w
		row := oy * outSize
		rR, rG, rB := R[row:row+outSize], G[row:row+outSize], B[row:row+outSize]
		for ox, tx := range cols {
			p, q := r0[tx.i0:tx.i0+3:tx.i0+3], r0[tx.i1:tx.i1+3:tx.i1+3]
			u, v := r1[tx.i0:tx.i0+3:tx.i0+3], r1[tx.i1:tx.i1+3:tx.i1+3]
			wx := tx.w
			rR[ox] = lerp2(p[0], q[0], u[0], v[0], wx, wy) * inv
			rG[ox] = lerp2(p[1], q[1], u[1], v[1], wx, wy) * inv
			rB[ox] = lerp2(p[2], q[2], u[2], v[2], wx, wy) * inv
		}
	}

	if bf != 1 {
		for i := range 3 * n {
			dst[i] = clamp01(dst[i] * bf)
		}
	}
	if cf != 1 {
		var sum float64
		for i := 0; i < n; i++ {
			sum += float64(gray(R[i], G[i], B[i]))
		}
		m := float32(sum / float64(n))
		for i := range 3 * n {
			dst[i] = clamp01((dst[i]-m)*cf + m)
		}
	}
	if sf != 1 {
		for i := 0; i < n; i++ {
			g := gray(R[i], G[i], B[i])
			R[i] = clamp01((R[i]-g)*sf + g)
			G[i] = clamp01((G[i]-g)*sf + g)
			B[i] = clamp01((B[i]-g)*sf + g)
		}
	}
	for c, plane := range [3][]float32{R, G, B} {
		m, is := spec.Mean[c], 1/spec.Std[c]
		for i, v := range plane {
			plane[i] = (v - m) * is
		}
	}
	// Drawn last, so that the other steps' draws (and outputs) do not depend on erasing.
	if a.EraseProb > 0 && rng.Float64() < a.EraseProb {
		if ex, ey, ew, eh, ok := a.eraseRect(rng, outSize); ok {
			for _, plane := range [3][]float32{R, G, B} {
				for y := ey; y < ey+eh; y++ {
					clear(plane[y*outSize+ex : y*outSize+ex+ew])
				}
			}
		}
	}
}

// eraseRect picks the rectangle of random erasing like torchvision's RandomErasing.get_params:
// up to ten tries at a random area and log-uniform ratio; ok is false when none fits.
func (a Augment) eraseRect(rng *rand.Rand, size int) (x0, y0, w, h int, ok bool) {
	scale := a.EraseScale
	if scale == ([2]float64{}) {
		scale = [2]float64{0.02, 0.25}
	}
	area := float64(size * size)
	lr0, lr1 := math.Log(0.3), math.Log(3.3)
	for try := 0; try < 10; try++ {
		target := area * uniform(rng, scale[0], scale[1])
		ratio := math.Exp(uniform(rng, lr0, lr1))
		h = int(math.Round(math.Sqrt(target * ratio)))
		w = int(math.Round(math.Sqrt(target / ratio)))
		if w > 0 && h > 0 && w < size && h < size {
			return rng.IntN(size - w + 1), rng.IntN(size - h + 1), w, h, true
		}
	}
	return 0, 0, 0, 0, false
}

// lerp2 interpolates bilinearly between p (top left), q (top right), u (bottom left), v (bottom right).
func lerp2(p, q, u, v byte, wx, wy float32) float32 {
	top := float32(p) + (float32(q)-float32(p))*wx
	bot := float32(u) + (float32(v)-float32(u))*wx
	return top + (bot-top)*wy
}

// gray is the ITU-R 601 luma torchvision uses for contrast and saturation.
func gray(r, g, b float32) float32 { return 0.299*r + 0.587*g + 0.114*b }

func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}
