package imageprep

import (
	"bytes"
	"fmt"
	"image"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg"
	"github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg/jpegtest"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// outcome is everything one decode gave: the pixels, the source description, or the error.
type outcome struct {
	rgb []byte
	src Source
	err string
}

func (o outcome) equal(p outcome) bool {
	return bytes.Equal(o.rgb, p.rgb) && o.src == p.src && o.err == p.err
}

func (o outcome) String() string {
	if o.err != "" {
		return "error " + o.err
	}
	return fmt.Sprintf("%d bytes of %+v", len(o.rgb), o.src)
}

// versus says how o differs from want.
func (o outcome) versus(want outcome) string {
	if o.err == "" && want.err == "" && o.src == want.src && len(o.rgb) == len(want.rgb) {
		n := 0
		for i := range o.rgb {
			if o.rgb[i] != want.rgb[i] {
				n++
			}
		}
		return fmt.Sprintf("%v: %d of %d bytes differ (mean |diff| %.2f)", want, n, len(o.rgb), meanAbsDiff(o.rgb, want.rgb))
	}
	return fmt.Sprintf("%v, want %v", o, want)
}

// decodeWith decodes data through decode (DecodeResized, or decodeResized with a chosen
// decoder) into *dst after filling it with junk, so bytes a decode fails to write would show;
// *dst is then the buffer to recycle for the next decode.
func decodeWith(decode func(data []byte, size int, lim Limits, dst []byte) ([]byte, Source, error), data []byte, size int, lim Limits, dst *[]byte) outcome {
	buf := (*dst)[:cap(*dst)]
	for i := range buf {
		buf[i] = 0xa5
	}
	rgb, src, err := decode(data, size, lim, buf)
	if err != nil {
		return outcome{src: src, err: err.Error()}
	}
	*dst = rgb
	return outcome{rgb: bytes.Clone(rgb), src: src}
}

// withDecoder returns decodeResized bound to d.
func withDecoder(d *turbojpeg.Decoder) func([]byte, int, Limits, []byte) ([]byte, Source, error) {
	return func(data []byte, size int, lim Limits, dst []byte) ([]byte, Source, error) {
		return decodeResized(d, data, size, lim, dst)
	}
}

// decodeAlone decodes data with a new libjpeg-turbo decoder: the one-at-a-time reference.
func decodeAlone(t testing.TB, data []byte, size int, lim Limits) outcome {
	t.Helper()
	d, err := turbojpeg.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var dst []byte
	return decodeWith(withDecoder(d), data, size, lim, &dst)
}

// noisyImage is a smooth gradient with noise: something like a photo, in every subsampling.
func noisyImage(rng *rand.Rand, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r0, g0, b0 := rng.Intn(200), rng.Intn(200), rng.Intn(200)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			n := rng.Intn(48)
			img.Pix[i] = uint8(r0 + x*55/w + n)
			img.Pix[i+1] = uint8(g0 + y*55/h + n/2)
			img.Pix[i+2] = uint8(b0 + (x+y)%56 - n/3)
			img.Pix[i+3] = 255
		}
	}
	return img
}

// badAndOdd are the inputs that once left a pooled decoder dirty or take other paths: the
// shared bad inputs (truncated, CMYK, grayscale, empty, fake, alpha PNG), JPEGs cut inside the
// header and inside the scan, and garbage after an SOI marker.
func badAndOdd(t testing.TB) map[string][]byte {
	t.Helper()
	dir := filepath.Join(testenv.SharedData(t), "bad-inputs")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{"garbage after SOI": {0xff, 0xd8, 0xff, 0x00, 0x01, 0x02}}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	full, err := jpegtest.Encode(noisyImage(rand.New(rand.NewSource(9)), 80, 60), jpegtest.S422, 85)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{20, 200, 400, len(full) / 2} {
		out[fmt.Sprintf("4:2:2 JPEG cut at %d of %d bytes", n, len(full))] = full[:n]
	}
	return out
}

type decodeJob struct {
	name string
	data []byte
	size int
	good bool
}

// reuseJobs are ~190 decodes: synthetic JPEGs of random sizes in every subsampling and
// quality, real dev photos, and every bad or odd input after every few good ones, at output
// sizes that change from one job to the next (so decoders resize between sizes all the time).
func reuseJobs(t testing.TB) []decodeJob {
	t.Helper()
	rng := rand.New(rand.NewSource(17))
	sizes := []int{16, 31, 64, 224, 24}
	var good []decodeJob
	subs := jpegtest.All()
	for i := 0; i < 120; i++ {
		w, h := 9+rng.Intn(82), 9+rng.Intn(82)
		if i%10 == 0 {
			w, h = 100+rng.Intn(500), 100+rng.Intn(400)
		}
		s := subs[i%len(subs)]
		q := 50 + rng.Intn(46)
		data, err := jpegtest.Encode(noisyImage(rng, w, h), s, q)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, decodeJob{fmt.Sprintf("synthetic %dx%d %v q%d", w, h, s, q), data, sizes[i%len(sizes)], true})
	}
	var photos []string
	for _, c := range []string{"Cat", "Dog"} {
		m, err := filepath.Glob(filepath.Join(testenv.SharedData(t), "petimages-dev", c, "*.jpg"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no dev photos in %s: %v", c, err)
		}
		sort.Strings(m)
		for i := 0; i < len(m); i += len(m) / 20 {
			photos = append(photos, m[i])
		}
	}
	for i, p := range photos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, decodeJob{filepath.Base(p), data, sizes[(i+2)%len(sizes)], true})
	}
	rng.Shuffle(len(good), func(i, j int) { good[i], good[j] = good[j], good[i] })
	bad := badAndOdd(t)
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	var jobs []decodeJob
	for i, g := range good {
		jobs = append(jobs, g)
		if i%3 == 2 {
			n := names[i/3%len(names)]
			jobs = append(jobs, decodeJob{n, bad[n], sizes[i%len(sizes)], false})
		}
	}
	return jobs
}

// TestPooledDecodesMatchOneAtATime decodes a mix of photos and bad inputs through
// the pooled decoders from more goroutines than there are cores, at several GOMAXPROCS, and
// requires every result to be byte for byte what a new decoder gives for that input alone. A
// truncated file once left its pooled decoder mid-header, and the next photo on it went down
// the standard-library path (other pixels), depending on scheduling.
func TestPooledDecodesMatchOneAtATime(t *testing.T) {
	jobs := reuseJobs(t)
	lim := DefaultLimits()
	want := make([]outcome, len(jobs))
	for i, j := range jobs {
		want[i] = decodeAlone(t, j.data, j.size, lim)
		if j.good && want[i].err != "" {
			t.Fatalf("%s: %s", j.name, want[i].err)
		}
	}
	goroutines := 4*runtime.NumCPU() + 1
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	const rounds = 3
	for _, procs := range []int{1, 2, 2 * runtime.NumCPU()} {
		runtime.GOMAXPROCS(procs)
		for r := 0; r < rounds; r++ {
			var (
				next    atomic.Int64
				wg      sync.WaitGroup
				mu      sync.Mutex
				differs []string
			)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var dst []byte // recycled across decodes, as Prepare's workers do
					for {
						i := int(next.Add(1) - 1)
						if i >= len(jobs) {
							return
						}
						got := decodeWith(DecodeResized, jobs[i].data, jobs[i].size, lim, &dst)
						if !got.equal(want[i]) {
							mu.Lock()
							differs = append(differs, fmt.Sprintf("%s at %d: %s", jobs[i].name, jobs[i].size, got.versus(want[i])))
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			for k, d := range differs {
				if k == 5 {
					t.Errorf("... and %d more", len(differs)-k)
					break
				}
				t.Errorf("GOMAXPROCS %d, %d goroutines, round %d: %s", procs, goroutines, r, d)
			}
			if len(differs) > 0 {
				t.Fatalf("GOMAXPROCS %d round %d: %d of %d decodes differ from decoding alone", procs, r, len(differs), len(jobs))
			}
		}
	}
}

// FuzzDecodeResizedDirtyDecoder decodes data with one decoder before and after that decoder
// decodes another (possibly broken) input, dirty, and requires both results to equal a new
// decoder's: nothing an input leaves behind in a decoder may change how the next one decodes.
func FuzzDecodeResizedDirtyDecoder(f *testing.F) {
	bad := badAndOdd(f)
	rng := rand.New(rand.NewSource(3))
	var good [][]byte
	for i, s := range jpegtest.All() {
		data, err := jpegtest.Encode(noisyImage(rng, 13+7*i, 29-3*i), s, 80)
		if err != nil {
			f.Fatal(err)
		}
		good = append(good, data)
	}
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		for j, g := range good {
			f.Add(bad[n], g, uint16(i*7+j*13))
		}
		f.Add(good[i%len(good)], bad[n], uint16(i)) // the broken one decoded twice
	}
	lim := Limits{MaxBytes: 1 << 16, MaxPixels: 1 << 18} // small bounds keep every exec fast
	f.Fuzz(func(t *testing.T, dirty, data []byte, sizes uint16) {
		size, dirtySize := 1+int(sizes%64), 1+int(sizes/64%64)
		want := decodeAlone(t, data, size, lim)
		d, err := turbojpeg.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		decode := withDecoder(d)
		var dst []byte
		first := decodeWith(decode, data, size, lim, &dst)
		between := decodeWith(decode, dirty, dirtySize, lim, &dst)
		second := decodeWith(decode, data, size, lim, &dst)
		if !first.equal(want) {
			t.Fatalf("a used decoder against a new one: %s", first.versus(want))
		}
		if !second.equal(want) {
			t.Fatalf("after decoding the other input (%v), against a new decoder: %s", between, second.versus(want))
		}
	})
}
