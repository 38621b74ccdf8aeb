package imageprep

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestLabelOf(t *testing.T) {
	tests := []struct {
		path  string
		label int
		ok    bool
	}{
		{"Cat/1.jpg", 0, true},
		{"Dog/11702.jpg", 1, true},
		{"PetImages/cat/x.png", 0, true},
		{"train/dogs/a.jpg", 1, true},
		{"cat.0.jpg", 0, true},
		{"DOG.12.JPG", 1, true},
		{"train/cat.5.jpg", 0, true},
		{"Cat/cat.5.jpg", 0, true},
		{"Cat/dog.5.jpg", -1, false}, // conflicting folder and name
		{"Cat/Dog/1.jpg", -1, false},
		{"catalog.jpg", -1, false},
		{"misc/1.jpg", -1, false},
		{"Thumbs.db", -1, false},
	}
	for _, tt := range tests {
		got, ok, why := LabelOf(tt.path)
		if got != tt.label || ok != tt.ok {
			t.Errorf("LabelOf(%q) = %d, %v (%s), want %d, %v", tt.path, got, ok, why, tt.label, tt.ok)
		}
		if !ok && why == "" {
			t.Errorf("LabelOf(%q) gives no reason", tt.path)
		}
	}
}

func makeSamples(nCat, nDog int) []Sample {
	var s []Sample
	for i := 0; i < nCat; i++ {
		s = append(s, Sample{Path: fmt.Sprintf("Cat/cat.%d.jpg", i), Label: 0})
	}
	for i := 0; i < nDog; i++ {
		s = append(s, Sample{Path: fmt.Sprintf("Dog/dog.%d.jpg", i), Label: 1})
	}
	return s
}

func splitOf(s []Sample) map[string]string {
	m := map[string]string{}
	for _, x := range s {
		m[x.Path] = x.Split
	}
	return m
}

func TestAssignSplits(t *testing.T) {
	tests := []struct {
		nCat, nDog int
		fractions  [3]float64
		want       map[string][2]int // split → {cats, dogs}
	}{
		{1001, 1001, DefaultFractions(), map[string][2]int{"train": {801, 801}, "val": {100, 100}, "test": {100, 100}}},
		{37, 53, DefaultFractions(), map[string][2]int{"train": {30, 42}, "val": {3, 6}, "test": {4, 5}}}, // cumulative rounding: 29.6|33.3, 42.4|47.7
		{10, 10, [3]float64{0.5, 0.5, 0}, map[string][2]int{"train": {5, 5}, "val": {5, 5}, "test": {0, 0}}},
		{3, 0, [3]float64{0.6, 0.2, 0.2}, map[string][2]int{"train": {2, 0}, "val": {0, 0}, "test": {1, 0}}}, // 1.8|2.4
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%d_%v", tt.nCat, tt.nDog, tt.fractions), func(t *testing.T) {
			a := makeSamples(tt.nCat, tt.nDog)
			if err := AssignSplits(a, tt.fractions, 7); err != nil {
				t.Fatal(err)
			}
			got := map[string][2]int{"train": {}, "val": {}, "test": {}}
			for _, s := range a {
				c := got[s.Split]
				c[s.Label]++
				got[s.Split] = c
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("counts = %v, want %v", got, tt.want)
			}

			// Same seed, reversed input order: identical split.
			b := makeSamples(tt.nCat, tt.nDog)
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
			if err := AssignSplits(b, tt.fractions, 7); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(splitOf(a), splitOf(b)) {
				t.Errorf("same seed, other input order: different split")
			}
			// Another seed: a different split (when there is anything to shuffle).
			c := makeSamples(tt.nCat, tt.nDog)
			if err := AssignSplits(c, tt.fractions, 8); err != nil {
				t.Fatal(err)
			}
			if tt.nCat > 5 && reflect.DeepEqual(splitOf(a), splitOf(c)) {
				t.Errorf("seeds 7 and 8 gave the same split")
			}
		})
	}
	for _, bad := range [][3]float64{{0.8, 0.1, 0.2}, {0, 0.5, 0.5}, {1.1, -0.1, 0}} {
		if err := AssignSplits(makeSamples(2, 2), bad, 1); err == nil {
			t.Errorf("AssignSplits(%v) accepted invalid fractions", bad)
		}
	}
}

// synthJPEG is a w×h gradient whose colour depends on seed.
func synthImage(w, h, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x*255/w + seed*37), uint8(y*255/h + seed*11), uint8((x + y + seed*5) % 256), 255})
		}
	}
	return img
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, b)
}

// kaggleFixture builds a Kaggle-layout folder: n synthetic JPEG/PNG photos per class, the six
// shared bad inputs, a pixel bomb, an oversized file and an unlabelled photo.
func kaggleFixture(t testing.TB, n int) (dir string, wantRejected map[string]Reason) {
	dir = t.TempDir()
	for i := 0; i < n; i++ {
		writeFile(t, filepath.Join(dir, "Cat", fmt.Sprintf("%d.jpg", i)), encodeJPEG(t, synthImage(40+i, 30+2*i, i)))
		dog := synthImage(50+2*i, 45, 100+i)
		if i%4 == 0 {
			writeFile(t, filepath.Join(dir, "Dog", fmt.Sprintf("%d.png", i)), encodePNG(t, dog))
		} else {
			writeFile(t, filepath.Join(dir, "Dog", fmt.Sprintf("%d.jpg", i)), encodeJPEG(t, dog))
		}
	}
	bad := filepath.Join(testenv.SharedData(t), "bad-inputs")
	copyFile(t, filepath.Join(bad, "empty.jpg"), filepath.Join(dir, "Cat", "empty.jpg"))
	copyFile(t, filepath.Join(bad, "truncated.jpg"), filepath.Join(dir, "Cat", "truncated.jpg"))
	copyFile(t, filepath.Join(bad, "fake.jpg"), filepath.Join(dir, "Dog", "fake.jpg"))
	copyFile(t, filepath.Join(bad, "alpha.png"), filepath.Join(dir, "Cat", "alpha.png"))
	copyFile(t, filepath.Join(bad, "grayscale.jpg"), filepath.Join(dir, "Cat", "grayscale.jpg"))
	copyFile(t, filepath.Join(bad, "cmyk.jpg"), filepath.Join(dir, "Dog", "cmyk.jpg"))
	writeFile(t, filepath.Join(dir, "Dog", "bomb.png"), pngBomb(50_000, 50_000))
	writeFile(t, filepath.Join(dir, "Dog", "huge.jpg"), append(encodeJPEG(t, synthImage(8, 8, 1)), make([]byte, 2<<20)...))
	writeFile(t, filepath.Join(dir, "misc", "photo.jpg"), encodeJPEG(t, synthImage(20, 20, 3)))
	writeFile(t, filepath.Join(dir, ".git", "config"), []byte("ignored: dot folder"))
	return dir, map[string]Reason{
		"Cat/empty.jpg":     ReasonEmpty,
		"Cat/truncated.jpg": ReasonTruncated,
		"Dog/fake.jpg":      ReasonUnknownFormat,
		"Dog/bomb.png":      ReasonTooManyPixels,
		"Dog/huge.jpg":      ReasonTooManyBytes,
		"misc/photo.jpg":    ReasonUnlabelled,
	}
}

func TestPrepareReportsEveryBadInput(t *testing.T) {
	src, wantRejected := kaggleFixture(t, 12)
	out := t.TempDir()
	rep, err := Prepare(context.Background(), PrepareOptions{
		Source: src, Out: out, Size: 32, Seed: 1, Workers: 3,
		Limits: Limits{MaxBytes: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Reason{}
	for _, r := range rep.Rejected {
		got[r.Path] = r.Reason
		if r.Detail == "" || strings.Contains(r.Detail, "\n") {
			t.Errorf("rejected %s: detail %q is not one non-empty line", r.Path, r.Detail)
		}
	}
	if !reflect.DeepEqual(got, wantRejected) {
		t.Errorf("rejected = %v\nwant %v", got, wantRejected)
	}
	if want := 2*12 + 3; len(rep.Samples) != want {
		t.Errorf("accepted %d, want %d", len(rep.Samples), want)
	}
	if rep.Files != 2*12+3+len(wantRejected) {
		t.Errorf("Files = %d (no file may be dropped silently)", rep.Files)
	}
	accepted := map[string]Sample{}
	for _, s := range rep.Samples {
		accepted[s.Path] = s
	}
	for path, wh := range map[string][2]int{"Cat/alpha.png": {160, 149}, "Cat/grayscale.jpg": {312, 396}, "Dog/cmyk.jpg": {327, 499}} {
		s, ok := accepted[path]
		if !ok {
			t.Errorf("%s was not accepted", path)
			continue
		}
		if s.Width != wh[0] || s.Height != wh[1] {
			t.Errorf("%s size %dx%d, want %v", path, s.Width, s.Height, wh)
		}
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for path, reason := range wantRejected {
		if !strings.Contains(text.String(), fmt.Sprintf("rejected %s: %s: ", path, reason)) {
			t.Errorf("report lacks the line for %s (%s):\n%s", path, reason, text.String())
		}
	}
	rj, err := readRejectedFile(filepath.Join(out, RejectedFile))
	if err != nil || !reflect.DeepEqual(rj, rep.Rejected) {
		t.Errorf("rejected.csv = %v, %v; want %v", rj, err, rep.Rejected)
	}
}

func TestPrepareFlatLayoutAndLoadSplit(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 10; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("cat.%d.jpg", i)), encodeJPEG(t, synthImage(30+3*i, 50, i)))
		writeFile(t, filepath.Join(src, fmt.Sprintf("dog.%d.jpg", i)), encodeJPEG(t, synthImage(60, 20+5*i, 50+i)))
	}
	out := t.TempDir()
	const size = 24
	rep, err := Prepare(context.Background(), PrepareOptions{Source: src, Out: out, Size: size, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 20 || len(rep.Rejected) != 0 {
		t.Fatalf("accepted %d rejected %v", len(rep.Samples), rep.Rejected)
	}
	for sp, want := range map[string]int{SplitTrain: 8, SplitVal: 1, SplitTest: 1} {
		for l := 0; l < 2; l++ {
			if got := rep.Count(sp, l); got != want {
				t.Errorf("%s/%s = %d, want %d", sp, classes[l], got, want)
			}
		}
	}
	checkLoadSplits(t, src, out, rep, DefaultSpec().withSize(size))
}

func (s Spec) withSize(n int) Spec { s.Size = n; return s }

// checkLoadSplits holds the round trip: every cached image equals Resize(ToRGB(Decode(file))),
// normalising it equals Preprocess(file), and labels and paths match the manifest.
func checkLoadSplits(t *testing.T, src, out string, rep *PrepareReport, spec Spec) {
	t.Helper()
	bySplit := map[string][]Sample{}
	for _, s := range rep.Samples {
		bySplit[s.Split] = append(bySplit[s.Split], s)
	}
	for _, sp := range Splits() {
		d, err := LoadSplit(out, sp)
		if err != nil {
			t.Fatal(err)
		}
		want := bySplit[sp]
		if d.N != len(want) || d.Size != spec.Size || !reflect.DeepEqual(d.Classes, Classes()) || d.Split != sp {
			t.Fatalf("LoadSplit(%s) = N %d size %d classes %v, want N %d size %d", sp, d.N, d.Size, d.Classes, len(want), spec.Size)
		}
		for i, s := range want {
			if d.Paths[i] != s.Path || d.Labels[i] != s.Label {
				t.Fatalf("%s[%d] = %s/%d, want %s/%d", sp, i, d.Paths[i], d.Labels[i], s.Path, s.Label)
			}
			data, err := os.ReadFile(filepath.Join(src, s.Path))
			if err != nil {
				t.Fatal(err)
			}
			rgb, _, err := DecodeResized(data, spec.Size, DefaultLimits(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Image(i), rgb) {
				t.Fatalf("%s[%d] (%s): cached bytes differ from DecodeResized", sp, i, s.Path)
			}
			served, err := spec.Preprocess(bytes.NewReader(data), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			trained := make([]float32, 3*spec.Size*spec.Size)
			spec.Normalize(d.Image(i), trained)
			if !reflect.DeepEqual(served, trained) {
				t.Fatalf("%s: Preprocess(file) != Normalize(cached bytes)", s.Path)
			}
		}
	}
	if _, err := LoadSplit(out, "holdout"); err == nil {
		t.Errorf("LoadSplit of an unknown split succeeded")
	}
}

func TestPrepareCacheReuse(t *testing.T) {
	src, _ := kaggleFixture(t, 6)
	out := t.TempDir()
	opts := PrepareOptions{Source: src, Out: out, Size: 16, Seed: 5}
	first, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	manifest1, _ := os.ReadFile(filepath.Join(out, ManifestFile))
	train1, _ := os.ReadFile(filepath.Join(out, "train.u8"))

	steps := []struct {
		name   string
		change func(o *PrepareOptions)
		reused bool
	}{
		{"identical", func(o *PrepareOptions) {}, true},
		{"force", func(o *PrepareOptions) { o.Force = true }, false},
		{"identical after force", func(o *PrepareOptions) {}, true},
		{"other seed", func(o *PrepareOptions) { o.Seed = 6 }, false},
		{"back to the first seed", func(o *PrepareOptions) {}, false},
		{"other size", func(o *PrepareOptions) { o.Size = 20 }, false},
		{"back to size 16", func(o *PrepareOptions) {}, false},
		{"a file changed", func(o *PrepareOptions) {
			writeFile(t, filepath.Join(src, "Cat", "0.jpg"), encodeJPEG(t, synthImage(41, 31, 99)))
		}, false},
		{"identical again", func(o *PrepareOptions) {}, true},
	}
	for _, st := range steps {
		o := opts
		st.change(&o)
		rep, err := Prepare(context.Background(), o)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if rep.Reused != st.reused {
			t.Errorf("%s: Reused = %v, want %v", st.name, rep.Reused, st.reused)
		}
		if st.name == "identical" {
			if rep.ManifestMD5 != first.ManifestMD5 || !reflect.DeepEqual(rep.Samples, first.Samples) || !reflect.DeepEqual(rep.Rejected, first.Rejected) {
				t.Errorf("reused report differs from the first one")
			}
		}
		if st.name == "force" {
			manifest2, _ := os.ReadFile(filepath.Join(out, ManifestFile))
			train2, _ := os.ReadFile(filepath.Join(out, "train.u8"))
			if !bytes.Equal(manifest1, manifest2) || !bytes.Equal(train1, train2) || rep.ManifestMD5 != first.ManifestMD5 {
				t.Errorf("a forced re-run with identical inputs gave different bytes")
			}
		}
		if st.name == "other seed" && rep.ManifestMD5 == first.ManifestMD5 {
			t.Errorf("another seed gave the same manifest")
		}
	}
	// A damaged cache is not reused.
	if err := os.Truncate(filepath.Join(out, "val.u8"), 5); err != nil {
		t.Fatal(err)
	}
	if rep, err := Prepare(context.Background(), opts); err != nil || rep.Reused {
		t.Errorf("truncated val.u8: Reused = %v, err %v; want a rebuild", rep != nil && rep.Reused, err)
	}
}

func TestPrepareCancelled(t *testing.T) {
	src, _ := kaggleFixture(t, 20)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Prepare(ctx, PrepareOptions{Source: src, Out: out, Size: 16, Workers: 1, Progress: func(done, total int) {
		if done == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare after cancel = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(out, PreparedFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled run left %s behind (%v)", PreparedFile, err)
	}
	left, _ := filepath.Glob(filepath.Join(out, ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

func TestPrepareOptionErrors(t *testing.T) {
	src := t.TempDir()
	tests := []struct {
		name string
		opts PrepareOptions
	}{
		{"no source", PrepareOptions{Out: t.TempDir()}},
		{"missing source", PrepareOptions{Source: filepath.Join(src, "nope"), Out: t.TempDir()}},
		{"bad fractions", PrepareOptions{Source: src, Out: t.TempDir(), Fractions: [3]float64{0.5, 0.1, 0.1}}},
		{"bad size", PrepareOptions{Source: src, Out: t.TempDir(), Size: -3}},
	}
	for _, tt := range tests {
		if _, err := Prepare(context.Background(), tt.opts); err == nil {
			t.Errorf("%s: Prepare succeeded", tt.name)
		}
	}
	for i := 0; i < 5; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("cat.%d.jpg", i)), []byte("x"))
	}
	if _, err := Prepare(context.Background(), PrepareOptions{Source: src, Out: t.TempDir(), MaxFiles: 4}); err == nil || !strings.Contains(err.Error(), "more than 4 files") {
		t.Errorf("MaxFiles 4 with 5 files: %v", err)
	}
}

// TestPrepareDevSet prepares the real 2,002 photos and audits the manifest against the md5 list
// shipped with the data.
func TestPrepareDevSet(t *testing.T) {
	shared := testenv.SharedData(t)
	src := filepath.Join(shared, "petimages-dev")
	out := t.TempDir()
	rep, err := Prepare(context.Background(), PrepareOptions{Source: src, Out: out, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepared %d photos in %s", len(rep.Samples), rep.Elapsed)
	if len(rep.Samples) != 2002 || len(rep.Rejected) != 0 {
		t.Fatalf("accepted %d, rejected %v; want 2002 and none", len(rep.Samples), rep.Rejected)
	}
	for sp, want := range map[string]int{SplitTrain: 801, SplitVal: 100, SplitTest: 100} {
		for l := range classes {
			if got := rep.Count(sp, l); got != want {
				t.Errorf("%s/%s = %d, want %d", sp, classes[l], got, want)
			}
		}
	}
	// manifest md5s == petimages-dev.md5 (paths sorted the same way)
	f, err := os.Open(filepath.Join(shared, "petimages-dev.md5"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, path, _ := strings.Cut(sc.Text(), "  ")
		want = append(want, strings.TrimPrefix(path, "./")+" "+sum)
	}
	var got []string
	for _, s := range rep.Samples {
		got = append(got, s.Path+" "+s.MD5)
	}
	if !sort.StringsAreSorted(got) || !reflect.DeepEqual(got, want) {
		t.Errorf("manifest (path, md5) differs from petimages-dev.md5 (first: %v vs %v)", got[:2], want[:2])
	}
	manifest, err := os.ReadFile(filepath.Join(out, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(manifest); hex.EncodeToString(sum[:]) != rep.ManifestMD5 {
		t.Errorf("ManifestMD5 %s is not the md5 of manifest.csv", rep.ManifestMD5)
	}
	p, err := ReadPrepared(out)
	if err != nil || p.ManifestMD5 != rep.ManifestMD5 || p.Seed != 42 || p.Size != 224 {
		t.Errorf("prepared.json = %+v, %v", p, err)
	}
	train, err := LoadSplit(out, SplitTrain)
	if err != nil || train.N != 1602 || len(train.Pixels) != 1602*224*224*3 {
		t.Fatalf("LoadSplit(train) = %v", err)
	}
	// A spot check of the shared-path guarantee on real photos (the fixture tests check all).
	for _, i := range []int{0, 777, 1601} {
		data, _ := os.ReadFile(filepath.Join(src, train.Paths[i]))
		served, err := DefaultSpec().Preprocess(bytes.NewReader(data), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		trained := make([]float32, len(served))
		DefaultSpec().Normalize(train.Image(i), trained)
		if !reflect.DeepEqual(served, trained) {
			t.Errorf("%s: Preprocess != Normalize(cached)", train.Paths[i])
		}
	}
	// Same inputs and settings: the cache is reused.
	again, err := Prepare(context.Background(), PrepareOptions{Source: src, Out: out, Seed: 42})
	if err != nil || !again.Reused || again.ManifestMD5 != rep.ManifestMD5 {
		t.Errorf("second run: reused=%v md5 %s err %v", again != nil && again.Reused, again.ManifestMD5, err)
	}
}

func TestCheckSharedBadInputs(t *testing.T) {
	checks, err := Check(context.Background(), filepath.Join(testenv.SharedData(t), "bad-inputs"), DefaultLimits(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // path → colour model, or the rejection reason
		"alpha.png":     "NRGBA",
		"cmyk.jpg":      "CMYK",
		"grayscale.jpg": "Gray",
		"empty.jpg":     string(ReasonEmpty),
		"fake.jpg":      string(ReasonUnknownFormat),
		"truncated.jpg": string(ReasonTruncated),
	}
	got := map[string]string{}
	for _, c := range checks {
		if c.Err != nil {
			got[c.Path] = string(c.Err.Reason)
		} else {
			got[c.Path] = c.Model
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check(bad-inputs) = %v\nwant %v", got, want)
	}
}
