package imageprep

import (
	"fmt"
	"math"
)

// Per-image features for drift monitoring. They are computed from what the shared
// preprocessing path already has — the Source (format, original size), the encoded size and
// the Size×Size RGB bytes DecodeResized returns — so training (from the prepared cache) and
// serving (right after DecodeResized) compute them from the same pixels, at a cost of one pass
// over at most FeatureGrid×FeatureGrid of the Size×Size pixels.
//
// The names are stable: they are the feature column names of drift profiles and reports and
// the `feature` label of the serving metrics.
const (
	FeatureWidth       = "width"        // original width in pixels (Source.Width)
	FeatureHeight      = "height"       // original height in pixels
	FeatureAspect      = "aspect_ratio" // width / height
	FeatureFileSize    = "file_size"    // encoded size in bytes
	FeatureMeanR       = "mean_r"       // mean of the red channel, 0–255, of the Size×Size image
	FeatureMeanG       = "mean_g"       // mean of the green channel
	FeatureMeanB       = "mean_b"       // mean of the blue channel
	FeatureStdR        = "std_r"        // population standard deviation of the red channel, 0–255
	FeatureStdG        = "std_g"        // standard deviation of the green channel
	FeatureStdB        = "std_b"        // standard deviation of the blue channel
	FeatureBrightness  = "brightness"   // mean luma Y' = 0.299 R + 0.587 G + 0.114 B (Rec. 601), 0–255
	FeatureContrast    = "contrast"     // RMS contrast: standard deviation of the luma, 0–255
	FeatureSaturation  = "saturation"   // mean HSV saturation (max−min)/max, 0–1 (0 where max is 0)
	FeatureSharpness   = "sharpness"    // variance of the 4-neighbour Laplacian of the luma over interior pixels
	FeatureGrayscale   = "grayscale"    // 1 when the mean of max(R,G,B)−min(R,G,B) is at most GrayscaleTolerance, else 0
	GrayscaleTolerance = 2.0            // mean channel spread (0–255) under which an image counts as grayscale
)

// NumFeatures is the number of per-image features, the length of Features.
const NumFeatures = 15

// featureNames is the column order of Features.
var featureNames = [NumFeatures]string{
	FeatureWidth, FeatureHeight, FeatureAspect, FeatureFileSize,
	FeatureMeanR, FeatureMeanG, FeatureMeanB, FeatureStdR, FeatureStdG, FeatureStdB,
	FeatureBrightness, FeatureContrast, FeatureSaturation, FeatureSharpness, FeatureGrayscale,
}

// FeatureNames returns the feature names in the column order of Features (a new slice).
func FeatureNames() []string { return append([]string(nil), featureNames[:]...) }

// CategoricalFeature reports whether the named feature is categorical (a 0/1 flag) rather
// than numerical. Only FeatureGrayscale is.
func CategoricalFeature(name string) bool { return name == FeatureGrayscale }

// Features are one image's feature values, in the order of FeatureNames.
type Features [NumFeatures]float64

// Map returns the features keyed by name.
func (f Features) Map() map[string]float64 {
	m := make(map[string]float64, NumFeatures)
	for i, n := range featureNames {
		m[n] = f[i]
	}
	return m
}

// FeatureGrid is the most samples per side the pixel statistics use: they are taken on every
// Step(size)-th row and column of the Size×Size image (all pixels up to 64×64, every second at
// 128, every fourth at 224), which keeps the cost per request at a few thousand pixels.
const FeatureGrid = 64

// featureStep is the sampling step of the pixel statistics for a size×size image:
// ceil(size / FeatureGrid).
func featureStep(size int) int { return (size + FeatureGrid - 1) / FeatureGrid }

// ImageFeatures computes the features of one image from the Size×Size packed RGB bytes (HWC)
// returned by DecodeResized, the Source it returned and the encoded size in bytes. The colour
// statistics, brightness, contrast, saturation and grayscale flag are taken over the pixels of
// the featureStep grid; sharpness is the variance of the full-resolution Laplacian at the grid's
// interior points.
func ImageFeatures(rgb []byte, size int, src Source, fileBytes int) (Features, error) {
	var f Features
	if size < 1 || len(rgb) != 3*size*size {
		return f, fmt.Errorf("imageprep: features: %d RGB bytes for a %dx%d image", len(rgb), size, size)
	}
	if src.Width <= 0 || src.Height <= 0 {
		return f, fmt.Errorf("imageprep: features: source size %dx%d", src.Width, src.Height)
	}
	step := featureStep(size)
	var sum, sq [3]int64
	var lsum, lsq, spread int64
	var sat float64
	var n int
	// luma in 1/1000 units (299 R + 587 G + 114 B), exact in integers
	luma := func(i int) int64 {
		return 299*int64(rgb[i]) + 587*int64(rgb[i+1]) + 114*int64(rgb[i+2])
	}
	for y := 0; y < size; y += step {
		row := rgb[3*y*size : 3*(y+1)*size]
		for x := 0; x < size; x += step {
			px := row[3*x : 3*x+3 : 3*x+3]
			r, g, b := int64(px[0]), int64(px[1]), int64(px[2])
			sum[0], sum[1], sum[2] = sum[0]+r, sum[1]+g, sum[2]+b
			sq[0], sq[1], sq[2] = sq[0]+r*r, sq[1]+g*g, sq[2]+b*b
			l := 299*r + 587*g + 114*b
			lsum += l
			lsq += l * l
			hi, lo := max(r, g, b), min(r, g, b)
			spread += hi - lo
			sat += float64(hi-lo) * invByte[hi]
			n++
		}
	}
	// Laplacian up + down + left + right − 4·centre at the grid's interior points. Exact in
	// integers: |l| ≤ 8·255·1000, so l² < 2^42 and the sums stay far below 2^63.
	var ls, lq, ln int64
	for y := step; y < size-1; y += step {
		for x := step; x < size-1; x += step {
			i := 3 * (y*size + x)
			l := luma(i-3*size) + luma(i+3*size) + luma(i-3) + luma(i+3) - 4*luma(i)
			ls += l
			lq += l * l
			ln++
		}
	}
	fn := float64(n)
	meanStd := func(s, q int64, scale float64) (float64, float64) {
		m := float64(s) / fn
		v := float64(q)/fn - m*m
		if v < 0 {
			v = 0
		}
		return m / scale, math.Sqrt(v) / scale
	}
	f[0], f[1] = float64(src.Width), float64(src.Height)
	f[2] = float64(src.Width) / float64(src.Height)
	f[3] = float64(fileBytes)
	for c := 0; c < 3; c++ {
		f[4+c], f[7+c] = meanStd(sum[c], sq[c], 1)
	}
	f[10], f[11] = meanStd(lsum, lsq, 1000)
	f[12] = sat / fn
	if ln > 0 {
		m := float64(ls) / float64(ln)
		f[13] = math.Max(0, float64(lq)/float64(ln)-m*m) / 1e6
	}
	if float64(spread)/fn <= GrayscaleTolerance {
		f[14] = 1
	}
	return f, nil
}

// invByte[v] is 1/v (and 0 for v = 0): the saturation's division becomes a multiplication.
var invByte = func() (t [256]float64) {
	for v := 1; v < 256; v++ {
		t[v] = 1 / float64(v)
	}
	return t
}()

// FileFeatures decodes one encoded image with DecodeResized at size×size and returns its
// features. It is the batch path of `catdog drift report` over a folder of photos and of the
// reference profile.
func FileFeatures(data []byte, size int, lim Limits) (Features, error) {
	rgb, src, err := DecodeResized(data, size, lim, nil)
	if err != nil {
		return Features{}, err
	}
	return ImageFeatures(rgb, size, src, len(data))
}
