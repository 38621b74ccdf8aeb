package imageprep

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// pipelineVersion changes whenever the bytes Prepare caches for the same input would change
// (decoder, colour conversion, resize kernel), so an old cache is never reused by mistake.
const pipelineVersion = "imageprep/3 jpeg=libjpeg-turbo-planes+dct-scale(1/8,1/4,1/2) resize=planar-triangle-fixed14-to-444 rgb=tjDecodeYUVPlanes fallback=image/jpeg,image/png+x/image/draw.BiLinear"

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
