package imageprep

import "math"

// This file is the resampler of the fast JPEG path: a separable, anti-aliased bilinear
// (triangle) filter in fixed point on 8-bit planes — the filter of Pillow's BILINEAR resize
// and of x/image/draw's BiLinear kernel: its support widens with the scale factor when
// shrinking, so every source pixel contributes.

const (
	precBits = 22 // fixed-point weight precision: 255 × 2^22 × (sum of weights) stays in int32
	half     = 1 << (precBits - 1)
)

// taps holds, for every output sample, the first input sample and n fixed-point weights.
type taps struct {
	first []int
	n     int
	w     []int32 // len(first)*n
}

// makeTaps computes the weights that resample inSize samples spanning extent (≤ inSize; a
// padded plane has samples beyond the image) to out samples. Every output gets the same number
// of taps (the widest window after dropping zero weights), shifted to stay inside the plane.
func makeTaps(inSize int, extent float64, out, chunk int) taps {
	scale := extent / float64(out)
	fscale := math.Max(scale, 1)
	support := fscale // the triangle filter has support 1
	type window struct {
		lo int
		ws []float64
	}
	wins := make([]window, out)
	n := 1
	for o := range wins {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), inSize)
		ws := make([]float64, 0, max(hi-lo, 1))
		var sum float64
		for i := lo; i < hi; i++ {
			v := max(1-math.Abs((float64(i)+0.5-center)/fscale), 0)
			ws = append(ws, v)
			sum += v
		}
		for len(ws) > 0 && ws[0] == 0 {
			ws, lo = ws[1:], lo+1
		}
		for len(ws) > 0 && ws[len(ws)-1] == 0 {
			ws = ws[:len(ws)-1]
		}
		if len(ws) == 0 { // cannot happen for out ≥ 1, extent > 0; keep the nearest sample
			lo, ws, sum = min(int(center), inSize-1), []float64{1}, 1
		}
		for i := range ws {
			ws[i] /= sum
		}
		wins[o] = window{lo, ws}
		n = max(n, len(ws))
	}
	n = min(n, inSize)
	if r := (n + chunk - 1) / chunk * chunk; r <= inSize {
		n = r // whole chunks of taps: the resampler's loops are unrolled by chunk
	}
	t := taps{first: make([]int, out), n: n, w: make([]int32, out*n)}
	for o, win := range wins {
		first := min(win.lo, inSize-n)
		row := t.w[o*n : (o+1)*n]
		for i, v := range win.ws {
			row[win.lo-first+i] = int32(math.Round(v * (1 << precBits)))
		}
		t.first[o] = first
	}
	return t
}

// Tap chunks: the horizontal pass sums 4 taps per step, the vertical pass 2 rows per step.
const (
	hChunk = 4
	vChunk = 2
)

type tapsKey struct {
	in     int
	extent float64
	out    int
	chunk  int
}

// tapsFor returns makeTaps' result, cached: photos come in a handful of sizes.
func (sc *scratch) tapsFor(in int, extent float64, out, chunk int) taps {
	k := tapsKey{in, extent, out, chunk}
	if t, ok := sc.taps[k]; ok {
		return t
	}
	if len(sc.taps) >= 64 {
		clear(sc.taps)
	}
	t := makeTaps(in, extent, out, chunk)
	sc.taps[k] = t
	return t
}

// resizePlane resamples the sw×sh image in src (stride ss, valid extent ew×eh ≤ sw×sh) to
// dw×dh bytes in dst (stride dw).
func (sc *scratch) resizePlane(dst []byte, dw, dh int, src []byte, ss, sw, sh int, ew, eh float64) {
	tx := sc.tapsFor(sw, ew, dw, hChunk)
	ty := sc.tapsFor(sh, eh, dh, vChunk)
	need := dw * sh
	if cap(sc.mid) < need+dw {
		sc.mid = make([]int32, need+dw)
	}
	mid, acc := sc.mid[:need], sc.mid[need:need+dw]
	for y := 0; y < sh; y++ {
		horizontal(mid[y*dw:(y+1)*dw], src[y*ss:y*ss+sw], tx)
	}
	n := ty.n
	for o := 0; o < dh; o++ {
		f, w := ty.first[o], ty.w[o*n:(o+1)*n]
		if n%vChunk == 0 {
			started := false
			for k := 0; k < n; k += vChunk {
				w0, w1 := w[k], w[k+1]
				if w0 == 0 && w1 == 0 {
					continue
				}
				r0, r1 := mid[(f+k)*dw:(f+k+1)*dw], mid[(f+k+1)*dw:(f+k+2)*dw]
				r1 = r1[:len(r0)]
				if !started {
					started = true
					for i := range r0 {
						acc[i] = half + r0[i]*w0 + r1[i]*w1
					}
				} else {
					for i := range r0 {
						acc[i] += r0[i]*w0 + r1[i]*w1
					}
				}
			}
		} else {
			for i := range acc {
				acc[i] = half
			}
			for k := 0; k < n; k++ {
				r := mid[(f+k)*dw : (f+k+1)*dw]
				for i, p := range r {
					acc[i] += p * w[k]
				}
			}
		}
		out := dst[o*dw : (o+1)*dw]
		for i, a := range acc {
			out[i] = byte(clip8(a))
		}
	}
}

// horizontal resamples one row with the taps t into out (one clipped value per output).
func horizontal(out []int32, row []byte, t taps) {
	n := t.n
	if n%hChunk != 0 {
		for o := range out {
			f := t.first[o]
			w := t.w[o*n : o*n+n : o*n+n]
			win := row[f : f+len(w) : f+len(w)]
			acc := int32(half)
			for k, p := range win {
				acc += int32(p) * w[k]
			}
			out[o] = clip8(acc)
		}
		return
	}
	if n == hChunk {
		for o := range out {
			p, q := (*[hChunk]byte)(row[t.first[o]:]), (*[hChunk]int32)(t.w[o*hChunk:])
			out[o] = clip8(half + int32(p[0])*q[0] + int32(p[1])*q[1] + int32(p[2])*q[2] + int32(p[3])*q[3])
		}
		return
	}
	for o := range out {
		f := t.first[o]
		acc := int32(half)
		for k := 0; k < n; k += hChunk {
			p, q := (*[hChunk]byte)(row[f+k:]), (*[hChunk]int32)(t.w[o*n+k:])
			acc += int32(p[0])*q[0] + int32(p[1])*q[1] + int32(p[2])*q[2] + int32(p[3])*q[3]
		}
		out[o] = clip8(acc)
	}
}

// clip8 turns a fixed-point accumulator into a byte value 0..255 (held in an int32). The
// triangle filter's weights are never negative, so only rounding can push a sum past 255.
func clip8(acc int32) int32 {
	return min(acc>>precBits, 255)
}
