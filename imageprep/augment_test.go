package imageprep

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func cachedFixture(size int) []byte {
	return packRGB(Resize(synthImage(3*size/2, size, 4), size), nil)
}

func TestAugmentDeterministic(t *testing.T) {
	const size = 64
	src := cachedFixture(size)
	spec := DefaultSpec()
	tests := []struct {
		name string
		aug  Augment
		out  int
	}{
		{"default", DefaultAugment(), size},
		{"default to a smaller output", DefaultAugment(), 48},
		{"strong", Augment{Scale: [2]float64{0.08, 1}, Ratio: [2]float64{0.5, 2}, FlipProb: 1, Brightness: 0.9, Contrast: 0.9, Saturation: 0.9}, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(seed uint64) []float32 {
				dst := make([]float32, 3*tt.out*tt.out)
				tt.aug.Apply(rand.New(rand.NewPCG(seed, 1)), src, size, tt.out, spec, dst)
				return dst
			}
			a, b := run(1), run(1)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("same seed gave different outputs")
			}
			differs := 0
			for seed := uint64(2); seed < 6; seed++ {
				if !reflect.DeepEqual(a, run(seed)) {
					differs++
				}
			}
			if differs == 0 {
				t.Errorf("four other seeds all gave the seed-1 output")
			}
			n := tt.out * tt.out
			for c := 0; c < 3; c++ {
				lo, hi := (0-spec.Mean[c])/spec.Std[c], (1-spec.Mean[c])/spec.Std[c]
				for _, v := range a[c*n : (c+1)*n] {
					if math.IsNaN(float64(v)) || v < lo-1e-5 || v > hi+1e-5 {
						t.Fatalf("channel %d value %v outside [%v, %v]", c, v, lo, hi)
					}
				}
			}
		})
	}
}

// TestAugmentIdentity: with every step disabled, Apply is Normalize, and with only a certain flip
// it is Normalize of the mirrored image, so train-time inputs match eval-time inputs.
func TestAugmentIdentity(t *testing.T) {
	const size = 32
	src := cachedFixture(size)
	spec := DefaultSpec()
	want := make([]float32, 3*size*size)
	spec.Normalize(src, want)

	mirrored := make([]byte, len(src))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			copy(mirrored[3*(y*size+x):3*(y*size+x)+3], src[3*(y*size+size-1-x):])
		}
	}
	wantFlip := make([]float32, 3*size*size)
	spec.Normalize(mirrored, wantFlip)

	for _, tt := range []struct {
		name string
		aug  Augment
		want []float32
	}{
		{"nothing", Augment{}, want},
		{"full crop, no jitter", Augment{Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}}, want},
		{"flip", Augment{FlipProb: 1}, wantFlip},
	} {
		got := make([]float32, len(want))
		tt.aug.Apply(rand.New(rand.NewPCG(9, 9)), src, size, size, spec, got)
		for i := range got {
			if d := math.Abs(float64(got[i] - tt.want[i])); d > 1e-5 {
				t.Fatalf("%s: [%d] = %v, want %v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

func TestAugmentNoAllocs(t *testing.T) {
	const size = 224
	src := cachedFixture(size)
	dst := make([]float32, 3*size*size)
	rng := rand.New(rand.NewPCG(1, 2))
	a, spec := DefaultAugment(), DefaultSpec()
	if allocs := testing.AllocsPerRun(20, func() { a.Apply(rng, src, size, size, spec, dst) }); allocs != 0 {
		t.Errorf("Apply allocates %v times per call", allocs)
	}
}

func BenchmarkAugment(b *testing.B) {
	const size = 224
	src := cachedFixture(size)
	dst := make([]float32, 3*size*size)
	rng := rand.New(rand.NewPCG(1, 2))
	a, spec := DefaultAugment(), DefaultSpec()
	for b.Loop() {
		a.Apply(rng, src, size, size, spec, dst)
	}
}

// TestAugmentErase: random erasing zeroes (the normalised mean) one rectangle of the size it
// was asked for, in every channel, leaves the rest as the same augmentation without erasing,
// and with probability 0 changes nothing.
func TestAugmentErase(t *testing.T) {
	const size = 48
	src := cachedFixture(size)
	spec := DefaultSpec()
	base := DefaultAugment()
	tests := []struct {
		name  string
		prob  float64
		scale [2]float64
	}{
		{"never", 0, [2]float64{}},
		{"default scale", 1, [2]float64{}},
		{"small", 1, [2]float64{0.05, 0.05}},
		{"large", 1, [2]float64{0.3, 0.4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 20; seed++ {
				plain := make([]float32, 3*size*size)
				base.Apply(rand.New(rand.NewPCG(seed, 9)), src, size, size, spec, plain)
				er := base
				er.EraseProb, er.EraseScale = tt.prob, tt.scale
				got := make([]float32, 3*size*size)
				er.Apply(rand.New(rand.NewPCG(seed, 9)), src, size, size, spec, got)
				n := size * size
				changed := 0
				for i := 0; i < n; i++ {
					if got[i] != plain[i] || got[n+i] != plain[n+i] || got[2*n+i] != plain[2*n+i] {
						if got[i] != 0 || got[n+i] != 0 || got[2*n+i] != 0 {
							t.Fatalf("seed %d pixel %d changed to (%v %v %v), not erased to 0", seed, i, got[i], got[n+i], got[2*n+i])
						}
						changed++
					}
				}
				if tt.prob == 0 {
					if changed != 0 {
						t.Fatalf("seed %d: %d pixels changed with erase probability 0", seed, changed)
					}
					continue
				}
				lo, hi := tt.scale[0], tt.scale[1]
				if tt.scale == ([2]float64{}) {
					lo, hi = 0.02, 0.25
				}
				// Rounding of the sides moves the area a little; pixels equal to 0 already
				// are not counted as changed.
				if frac := float64(changed) / float64(n); frac > hi*1.25+0.01 || frac < lo*0.6 {
					t.Errorf("seed %d: erased %.3f of the image, want about [%v, %v]", seed, frac, lo, hi)
				}
			}
		})
	}
}
