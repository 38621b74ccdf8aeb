package imageprep

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/catdog-mlops/catdog/internal/atomicfile"

	"golang.org/x/sync/errgroup"
)

// Output file names inside the prepared directory.
const (
	ManifestFile = "manifest.csv"  // path,md5,label,split,width,height of every accepted file, sorted by path
	RejectedFile = "rejected.csv"  // path,reason,detail of every skipped file, sorted by path
	PreparedFile = "prepared.json" // settings, manifest md5 and split index; written last
)

// pipelineVersion changes whenever the bytes Prepare caches for the same input would change
// (decoder, colour conversion, resize kernel), so an old cache is never reused by mistake.
const pipelineVersion = "imageprep/3 jpeg=libjpeg-turbo-planes+dct-scale(1/8,1/4,1/2) resize=planar-triangle-fixed14-to-444 rgb=tjDecodeYUVPlanes fallback=image/jpeg,image/png+x/image/draw.BiLinear"

// Sample is one accepted image of a prepared dataset.
type Sample struct {
	Path          string // relative to the data folder, forward slashes
	Label         int    // index into Classes()
	MD5           string // hex md5 of the file bytes
	Split         string // "train", "val" or "test"
	Width, Height int    // original size
}

// Rejected is one file Prepare skipped, with the reason.
type Rejected struct {
	Path   string
	Reason Reason
	Detail string
}

// PrepareOptions configures Prepare. Zero values take the documented defaults.
type PrepareOptions struct {
	// Source is the data folder (Kaggle PetImages Cat/ Dog/ folders, or flat cat.N.jpg/dog.N.jpg).
	Source string
	// Out is the output folder. The default is "data/prepared".
	Out string
	// Size is the side of the cached square images. The default is 224.
	Size int
	// Seed seeds the stratified split. The default is 0 (a valid seed).
	Seed int64
	// Fractions are the train/val/test fractions. The default (all zero) is 0.8, 0.1, 0.1.
	Fractions [3]float64
	// Workers is the number of decoding goroutines. The default is runtime.NumCPU().
	Workers int
	// Limits bounds each file. Zero fields take DefaultLimits.
	Limits Limits
	// MaxFiles bounds the number of files in Source. The default is 1,000,000.
	MaxFiles int
	// Force re-decodes even when the cache in Out matches the inputs and settings.
	Force bool
	// Progress, when set, is called from one goroutine after each file is decoded.
	Progress func(done, total int)
}

func (o PrepareOptions) withDefaults() PrepareOptions {
	if o.Out == "" {
		o.Out = filepath.Join("data", "prepared")
	}
	if o.Size == 0 {
		o.Size = DefaultSpec().Size
	}
	if o.Fractions == ([3]float64{}) {
		o.Fractions = defaultFractions
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	o.Limits = o.Limits.withDefaults()
	if o.MaxFiles <= 0 {
		o.MaxFiles = 1_000_000
	}
	return o
}

// PrepareReport is what Prepare did.
type PrepareReport struct {
	Out         string
	Files       int        // files found in Source
	Samples     []Sample   // accepted, sorted by path
	Rejected    []Rejected // skipped, sorted by path
	ManifestMD5 string     // md5 of manifest.csv
	Reused      bool       // the cache in Out matched, nothing was decoded
	Elapsed     time.Duration
}

// Count returns the number of accepted samples in split with label (label < 0: any label).
func (r *PrepareReport) Count(split string, label int) int {
	n := 0
	for _, s := range r.Samples {
		if s.Split == split && (label < 0 || s.Label == label) {
			n++
		}
	}
	return n
}

// WriteText writes a readable report: accepted counts per class and split, then one line per
// rejected file with its reason.
func (r *PrepareReport) WriteText(w io.Writer) error {
	var b strings.Builder
	state := "prepared"
	if r.Reused {
		state = "reused cache"
	}
	fmt.Fprintf(&b, "%s %s: %d files, %d accepted, %d rejected (%s)\n", state, r.Out, r.Files, len(r.Samples), len(r.Rejected), r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "%-6s", "split")
	for _, c := range classes {
		fmt.Fprintf(&b, " %6s", c)
	}
	fmt.Fprintf(&b, " %6s\n", "total")
	for _, sp := range Splits() {
		fmt.Fprintf(&b, "%-6s", sp)
		for l := range classes {
			fmt.Fprintf(&b, " %6d", r.Count(sp, l))
		}
		fmt.Fprintf(&b, " %6d\n", r.Count(sp, -1))
	}
	fmt.Fprintf(&b, "manifest md5 %s\n", r.ManifestMD5)
	for _, rj := range r.Rejected {
		fmt.Fprintf(&b, "rejected %s: %s: %s\n", rj.Path, rj.Reason, oneLine(rj.Detail))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Prepared is prepared.json: the settings and the index of the cached split files.
type Prepared struct {
	Size        int                   `json:"size"`
	Classes     []string              `json:"classes"`
	Seed        int64                 `json:"seed"`
	Fractions   [3]float64            `json:"fractions"`
	ManifestMD5 string                `json:"manifest_md5"`
	Source      string                `json:"source"`
	Splits      map[string]SplitIndex `json:"splits"`
	// InputsMD5 fingerprints the input files (paths and md5s) and every setting that changes the
	// cached bytes; Prepare reuses the cache only when it matches.
	InputsMD5 string `json:"inputs_md5"`
	Pipeline  string `json:"pipeline"`
	Limits    Limits `json:"limits"`
	Rejected  int    `json:"rejected"`
}

// SplitIndex describes one cached split file: Count images of Size×Size×3 bytes, in the order
// of Labels and Paths.
type SplitIndex struct {
	File   string   `json:"file"`
	Count  int      `json:"count"`
	Labels []int    `json:"labels"`
	Paths  []string `json:"paths"`
}

// ReadPrepared reads dir/prepared.json.
func ReadPrepared(dir string) (*Prepared, error) {
	b, err := os.ReadFile(filepath.Join(dir, PreparedFile))
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	var p Prepared
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("imageprep: %s: %w", PreparedFile, err)
	}
	if p.Size <= 0 || len(p.Classes) == 0 {
		return nil, fmt.Errorf("imageprep: %s: no size or classes", PreparedFile)
	}
	return &p, nil
}

// Prepare validates every file under opts.Source, decodes the good ones in parallel, resizes them
// to Size×Size with Resize(ToRGB(img)), splits them (AssignSplits) and writes into opts.Out:
// manifest.csv, rejected.csv, {train,val,test}.u8 (N×Size×Size×3 uint8 HWC RGB in manifest order)
// and prepared.json. Bad files never fail the run: they are listed in the report with a reason.
// When Out already holds a cache made from the same file contents and settings, Prepare reuses it
// (Reused is true) unless opts.Force is set.
func Prepare(ctx context.Context, opts PrepareOptions) (*PrepareReport, error) {
	start := time.Now()
	opts = opts.withDefaults()
	if opts.Source == "" {
		return nil, errors.New("imageprep: Prepare: no source folder")
	}
	if err := (Spec{Size: opts.Size, Std: [3]float32{1, 1, 1}}).validate(); err != nil {
		return nil, err
	}
	if err := validFractions(opts.Fractions); err != nil {
		return nil, err
	}
	paths, err := listFiles(opts.Source, opts.MaxFiles)
	if err != nil {
		return nil, err
	}
	sums, err := hashFiles(ctx, opts.Source, paths, opts.Workers, opts.Limits.MaxBytes)
	if err != nil {
		return nil, err
	}
	fingerprint := inputsMD5(paths, sums, opts)

	if !opts.Force {
		if rep, ok := reuse(opts, fingerprint); ok {
			rep.Files = len(paths)
			rep.Elapsed = time.Since(start)
			return rep, nil
		}
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	// The old index goes first, so an interrupted run never leaves a cache that looks valid.
	if err := os.Remove(filepath.Join(opts.Out, PreparedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("imageprep: %w", err)
	}

	rep := &PrepareReport{Out: opts.Out, Files: len(paths)}
	pixels, err := os.CreateTemp(opts.Out, ".pixels-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	defer func() {
		pixels.Close()
		os.Remove(pixels.Name())
	}()
	results, err := decodeAll(ctx, opts, paths, sums, pixels)
	if err != nil {
		return nil, err
	}
	var rows []int // pixel-file row of each sample
	for i, r := range results {
		if r.rejected != nil {
			rep.Rejected = append(rep.Rejected, *r.rejected)
			continue
		}
		rep.Samples = append(rep.Samples, r.sample)
		rows = append(rows, i)
	}
	if err := AssignSplits(rep.Samples, opts.Fractions, opts.Seed); err != nil {
		return nil, err
	}
	prep := &Prepared{
		Size: opts.Size, Classes: Classes(), Seed: opts.Seed, Fractions: opts.Fractions,
		Source: opts.Source, Splits: map[string]SplitIndex{}, InputsMD5: fingerprint,
		Pipeline: pipelineVersion, Limits: opts.Limits, Rejected: len(rep.Rejected),
	}
	rowBytes := int64(opts.Size * opts.Size * 3)
	for _, sp := range Splits() {
		idx := SplitIndex{File: sp + ".u8", Labels: []int{}, Paths: []string{}}
		var srcRows []int
		for k, s := range rep.Samples {
			if s.Split == sp {
				idx.Labels = append(idx.Labels, s.Label)
				idx.Paths = append(idx.Paths, s.Path)
				srcRows = append(srcRows, rows[k])
			}
		}
		idx.Count = len(srcRows)
		if err := writeSplit(filepath.Join(opts.Out, idx.File), pixels, srcRows, rowBytes); err != nil {
			return nil, err
		}
		prep.Splits[sp] = idx
	}
	manifest := encodeManifest(rep.Samples)
	sum := md5.Sum(manifest)
	rep.ManifestMD5 = hex.EncodeToString(sum[:])
	prep.ManifestMD5 = rep.ManifestMD5
	if err := writeFileAtomic(filepath.Join(opts.Out, ManifestFile), manifest); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, RejectedFile), encodeRejected(rep.Rejected)); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(prep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(opts.Out, PreparedFile), append(js, '\n')); err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// listFiles returns every regular file under root (relative, forward slashes, sorted), skipping
// directories whose name starts with a dot (.git, .dvc).
func listFiles(root string, maxFiles int) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if len(paths) >= maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("imageprep: listing %s: %w", root, err)
	}
	sort.Strings(paths)
	return paths, nil
}

// fileSum is the md5 and size of one input, or why it could not be read.
type fileSum struct {
	md5  string
	size int64
	err  error
}

// hashFiles computes the md5 of every file (up to maxBytes+1 bytes each) in parallel.
func hashFiles(ctx context.Context, root string, paths []string, workers int, maxBytes int64) ([]fileSum, error) {
	sums := make([]fileSum, len(paths))
	err := parallel(ctx, len(paths), workers, func(i int) {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(paths[i])))
		if err != nil {
			sums[i].err = err
			return
		}
		defer f.Close()
		h := md5.New()
		n, err := io.Copy(h, io.LimitReader(f, maxBytes+1))
		sums[i] = fileSum{md5: hex.EncodeToString(h.Sum(nil)), size: n, err: err}
	}, nil)
	return sums, err
}

// parallel runs fn(0..n-1) on at most workers goroutines and calls done with the number
// finished so far after each (one call at a time, k increasing). It stops starting work when
// ctx is cancelled and returns ctx's error then.
func parallel(ctx context.Context, n, workers int, fn func(i int), done func(k int)) error {
	var g errgroup.Group
	g.SetLimit(max(workers, 1))
	var mu sync.Mutex
	finished := 0
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			fn(i)
			if done != nil {
				mu.Lock()
				finished++
				done(finished)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// inputsMD5 fingerprints the inputs and every setting that changes the cached bytes.
func inputsMD5(paths []string, sums []fileSum, o PrepareOptions) string {
	h := md5.New()
	fmt.Fprintf(h, "%s\nsize=%d seed=%d fractions=%v maxbytes=%d maxpixels=%d classes=%v\n",
		pipelineVersion, o.Size, o.Seed, o.Fractions, o.Limits.MaxBytes, o.Limits.MaxPixels, classes)
	for i, p := range paths {
		fmt.Fprintf(h, "%s\t%s\t%d\t%v\n", p, sums[i].md5, sums[i].size, sums[i].err != nil)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reuse returns the report of the cache in o.Out when it was made from the same inputs and
// settings and its files are intact.
func reuse(o PrepareOptions, fingerprint string) (*PrepareReport, bool) {
	p, err := ReadPrepared(o.Out)
	if err != nil || p.InputsMD5 != fingerprint || p.Pipeline != pipelineVersion || p.Size != o.Size {
		return nil, false
	}
	manifest, err := os.ReadFile(filepath.Join(o.Out, ManifestFile))
	if err != nil {
		return nil, false
	}
	if sum := md5.Sum(manifest); hex.EncodeToString(sum[:]) != p.ManifestMD5 {
		return nil, false
	}
	samples, err := ReadManifest(bytes.NewReader(manifest))
	if err != nil {
		return nil, false
	}
	rejected, err := readRejectedFile(filepath.Join(o.Out, RejectedFile))
	if err != nil || len(rejected) != p.Rejected {
		return nil, false
	}
	for _, sp := range Splits() {
		idx, ok := p.Splits[sp]
		if !ok {
			return nil, false
		}
		st, err := os.Stat(filepath.Join(o.Out, idx.File))
		if err != nil || st.Size() != int64(idx.Count)*int64(p.Size*p.Size*3) {
			return nil, false
		}
	}
	return &PrepareReport{Out: o.Out, Samples: samples, Rejected: rejected, ManifestMD5: p.ManifestMD5, Reused: true}, true
}

// result is the outcome of one file.
type result struct {
	sample   Sample
	rejected *Rejected
}

// decodeAll decodes, resizes and packs every file, writing accepted images to row i of pixels.
func decodeAll(ctx context.Context, o PrepareOptions, paths []string, sums []fileSum, pixels *os.File) ([]result, error) {
	rowBytes := o.Size * o.Size * 3
	results := make([]result, len(paths))
	bufs := sync.Pool{New: func() any { b := make([]byte, rowBytes); return &b }}
	var (
		mu     sync.Mutex
		ioErr  error
		report = func(i int, r Reason, detail string) {
			results[i].rejected = &Rejected{Path: paths[i], Reason: r, Detail: oneLine(detail)}
		}
	)
	err := parallel(ctx, len(paths), o.Workers, func(i int) {
		rel := paths[i]
		if sums[i].err != nil {
			report(i, ReasonUnreadable, sums[i].err.Error())
			return
		}
		if sums[i].size > o.Limits.MaxBytes {
			report(i, ReasonTooManyBytes, fmt.Sprintf("more than %d bytes", o.Limits.MaxBytes))
			return
		}
		data, err := os.ReadFile(filepath.Join(o.Source, filepath.FromSlash(rel)))
		if err != nil {
			report(i, ReasonUnreadable, err.Error())
			return
		}
		if sum := md5.Sum(data); hex.EncodeToString(sum[:]) != sums[i].md5 {
			report(i, ReasonUnreadable, "file changed while preparing")
			return
		}
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		rgb, src, err := DecodeResized(data, o.Size, o.Limits, *bp)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) {
				detail := ""
				if de.Err != nil {
					detail = de.Err.Error()
				}
				report(i, de.Reason, detail)
			} else {
				report(i, ReasonCorrupt, err.Error())
			}
			return
		}
		// A file that is not an image is reported as such even without a label; a good image
		// without a label is reported as unlabelled.
		label, ok, why := LabelOf(rel)
		if !ok {
			report(i, ReasonUnlabelled, why)
			return
		}
		*bp = rgb
		if _, err := pixels.WriteAt(rgb, int64(i)*int64(rowBytes)); err != nil {
			mu.Lock()
			ioErr = err
			mu.Unlock()
			return
		}
		results[i].sample = Sample{Path: rel, Label: label, MD5: sums[i].md5, Width: src.Width, Height: src.Height}
	}, func(k int) {
		if o.Progress != nil {
			o.Progress(k, len(paths))
		}
	})
	if err != nil {
		return nil, err
	}
	if ioErr != nil {
		return nil, fmt.Errorf("imageprep: writing pixel cache: %w", ioErr)
	}
	return results, nil
}

// writeSplit copies the given rows of pixels into a new split file, atomically.
func writeSplit(name string, pixels *os.File, rows []int, rowBytes int64) error {
	err := atomicfile.Write(name, 0o644, func(w io.Writer) error {
		for _, r := range rows {
			if _, err := io.Copy(w, io.NewSectionReader(pixels, int64(r)*rowBytes, rowBytes)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("imageprep: %w", err)
	}
	return nil
}

// writeFileAtomic writes one of the prepared directory's small files.
func writeFileAtomic(name string, data []byte) error {
	if err := atomicfile.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("imageprep: %w", err)
	}
	return nil
}

var manifestHeader = []string{"path", "md5", "label", "split", "width", "height"}

// encodeManifest renders manifest.csv (header, then one row per sample; label is the class name).
func encodeManifest(samples []Sample) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(manifestHeader)
	for _, s := range samples {
		_ = w.Write([]string{s.Path, s.MD5, classes[s.Label], s.Split, strconv.Itoa(s.Width), strconv.Itoa(s.Height)})
	}
	w.Flush()
	return b.Bytes()
}

// ReadManifest parses manifest.csv as written by Prepare.
func ReadManifest(r io.Reader) ([]Sample, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("imageprep: manifest: %w", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(manifestHeader, ",") {
		return nil, fmt.Errorf("imageprep: manifest: header is not %v", manifestHeader)
	}
	samples := make([]Sample, 0, len(rows)-1)
	for n, row := range rows[1:] {
		label := classIndex(row[2])
		w, err1 := strconv.Atoi(row[4])
		h, err2 := strconv.Atoi(row[5])
		if label < 0 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("imageprep: manifest line %d: bad label or size %v", n+2, row)
		}
		samples = append(samples, Sample{Path: row[0], MD5: row[1], Label: label, Split: row[3], Width: w, Height: h})
	}
	return samples, nil
}

func encodeRejected(rj []Rejected) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"path", "reason", "detail"})
	for _, r := range rj {
		_ = w.Write([]string{r.Path, string(r.Reason), r.Detail})
	}
	w.Flush()
	return b.Bytes()
}

func readRejectedFile(name string) ([]Rejected, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("imageprep: %s: %v", RejectedFile, err)
	}
	var out []Rejected
	for _, row := range rows[1:] {
		out = append(out, Rejected{Path: row[0], Reason: Reason(row[1]), Detail: row[2]})
	}
	return out, nil
}

// Dataset is one cached split loaded into memory: N images of Size×Size×3 bytes (HWC RGB) in
// Pixels, with their Labels and source Paths in the same order.
type Dataset struct {
	Size    int
	Classes []string
	Split   string
	N       int
	Labels  []int
	Paths   []string
	Pixels  []byte
}

// Image returns the Size×Size×3 bytes of image i (a sub-slice of Pixels).
func (d *Dataset) Image(i int) []byte {
	n := d.Size * d.Size * 3
	return d.Pixels[i*n : (i+1)*n : (i+1)*n]
}

// LoadSplit reads split ("train", "val" or "test") of a directory written by Prepare.
func LoadSplit(dir, split string) (*Dataset, error) {
	p, err := ReadPrepared(dir)
	if err != nil {
		return nil, err
	}
	idx, ok := p.Splits[split]
	if !ok {
		return nil, fmt.Errorf("imageprep: %s has no split %q", dir, split)
	}
	if len(idx.Labels) != idx.Count || len(idx.Paths) != idx.Count {
		return nil, fmt.Errorf("imageprep: %s: split %q index is inconsistent", PreparedFile, split)
	}
	name := filepath.Join(dir, filepath.Base(idx.File))
	want := int64(idx.Count) * int64(p.Size*p.Size*3)
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	if st.Size() != want {
		return nil, fmt.Errorf("imageprep: %s is %d bytes, want %d (%d images of %dx%dx3)", name, st.Size(), want, idx.Count, p.Size, p.Size)
	}
	pix, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("imageprep: %w", err)
	}
	for _, l := range idx.Labels {
		if l < 0 || l >= len(p.Classes) {
			return nil, fmt.Errorf("imageprep: %s: label %d out of range", PreparedFile, l)
		}
	}
	return &Dataset{Size: p.Size, Classes: p.Classes, Split: split, N: idx.Count, Labels: idx.Labels, Paths: idx.Paths, Pixels: pix}, nil
}

// FileCheck is the outcome of validating one file with Check.
type FileCheck struct {
	Path          string // relative to the folder, forward slashes
	Format        string // "jpeg" or "png" when recognised
	Width, Height int
	Model         string       // decoded colour model, e.g. "YCbCr", "Gray", "CMYK", "NRGBA"
	Err           *DecodeError // nil when the file is usable
}

// Check decodes every file under dir (bounded by lim, on workers goroutines; 0 = all cores) and
// reports each one, usable or not, sorted by path. Unlike Prepare it needs no labels and writes
// nothing: it answers "which of these files would be accepted, and why not".
func Check(ctx context.Context, dir string, lim Limits, workers int) ([]FileCheck, error) {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	lim = lim.withDefaults()
	paths, err := listFiles(dir, 1_000_000)
	if err != nil {
		return nil, err
	}
	out := make([]FileCheck, len(paths))
	err = parallel(ctx, len(paths), workers, func(i int) {
		out[i].Path = paths[i]
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(paths[i])))
		if err != nil {
			out[i].Err = &DecodeError{Reason: ReasonUnreadable, Err: err}
			return
		}
		defer f.Close()
		img, format, err := Decode(f, lim)
		out[i].Format = format
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				de = &DecodeError{Reason: ReasonCorrupt, Err: err}
			}
			out[i].Err = de
			return
		}
		b := img.Bounds()
		out[i].Width, out[i].Height, out[i].Model = b.Dx(), b.Dy(), modelName(img)
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// modelName names the decoded image's colour model by its concrete type ("*image.NRGBA" → "NRGBA").
func modelName(img any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", img), "*image.")
}
