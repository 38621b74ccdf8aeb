package imageprep

import (
	"context"
	"crypto/md5"
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
	"strings"
	"time"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Output file names inside the prepared directory.
const (
	ManifestFile = "manifest.csv"  // path,md5,label,split,width,height of every accepted file, sorted by path
	RejectedFile = "rejected.csv"  // path,reason,detail of every skipped file, sorted by path
	PreparedFile = "prepared.json" // settings, manifest md5 and split index; written last
)

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
	paths, err := ListFiles(opts.Source, opts.MaxFiles, nil)
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

// ListFiles returns the files under root that match accepts (every file when match is nil),
// relative to root with forward slashes, sorted, skipping directories whose name starts with
// a dot (.git, .dvc). More than maxFiles matching files is an error.
func ListFiles(root string, maxFiles int, match func(rel string) bool) ([]string, error) {
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
		rel = filepath.ToSlash(rel)
		if match != nil && !match(rel) {
			return nil
		}
		if len(paths) >= maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		paths = append(paths, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("imageprep: listing %s: %w", root, err)
	}
	sort.Strings(paths)
	return paths, nil
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
