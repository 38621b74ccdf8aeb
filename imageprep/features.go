package imageprep

import (
	"fmt"
	"math"
)

// Per-image features for drift monitoring. They are computed from what the shared
// preprocessing path already has — the Source (format, original size), the encoded size and
// the Size×Size RGB bytes DecodeResized returns — so training (from the prepared cache) and
// serving (right after DecodeResized) compute them from the same pixels, at a cost of one pass
// over Size×Size pixels.
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

// ImageFeatures computes the features of one image from the Size×Size packed RGB bytes (HWC)
// returned by DecodeResized, the Source it returned and the encoded size in bytes.
func ImageFeatures(rgb []byte, size int, src Source, fileBytes int) (Features, error) {
	var f Features
	if size < 1 || len(rgb) != 3*size*size {
		return f, fmt.Errorf("imageprep: features: %d RGB bytes for a %dx%d image", len(rgb), size, size)
	}
	if src.Width <= 0 || src.Height <= 0 {
		return f, fmt.Errorf("imageprep: features: source size %dx%d", src.Width, src.Height)
	}
	n := size * size
	// Luma in 1/1000 units (299 R + 587 G + 114 B), exact in integers.
	luma := make([]int32, n)
	var sum, sq [3]int64
	var lsum, lsq, spread int64
	var sat float64
	for i := 0; i < n; i++ {
		r, g, b := int64(rgb[3*i]), int64(rgb[3*i+1]), int64(rgb[3*i+2])
		sum[0], sum[1], sum[2] = sum[0]+r, sum[1]+g, sum[2]+b
		sq[0], sq[1], sq[2] = sq[0]+r*r, sq[1]+g*g, sq[2]+b*b
		y := 299*r + 587*g + 114*b
		luma[i] = int32(y)
		lsum += y
		lsq += y * y
		hi, lo := max(r, g, b), min(r, g, b)
		spread += hi - lo
		sat += float64(hi-lo) * invByte[hi]
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
	f[13] = laplacianVariance(luma, size) / 1e6
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

// laplacianVariance is the population variance of the 4-neighbour Laplacian
// (up + down + left + right − 4·centre) over the interior pixels of a size×size plane.
func laplacianVariance(p []int32, size int) float64 {
	if size < 3 {
		return 0
	}
	// Exact in integers: |l| <= 8·255·1000, so l² < 2^42 and the sum of squares stays below
	// 2^63 for planes up to 2^10 pixels on a side.
	var s, q int64
	for y := 1; y < size-1; y++ {
		row := p[y*size : (y+1)*size]
		up, down := p[(y-1)*size:y*size], p[(y+1)*size:(y+2)*size]
		for x := 1; x < size-1; x++ {
			l := int64(up[x]) + int64(down[x]) + int64(row[x-1]) + int64(row[x+1]) - 4*int64(row[x])
			s += l
			q += l * l
		}
	}
	m := float64((size - 2) * (size - 2))
	mean := float64(s) / m
	v := float64(q)/m - mean*mean
	if v < 0 {
		return 0
	}
	return v
}

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
