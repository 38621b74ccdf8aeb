package imageprep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
)

// Classes are the class names in label order: label 0 is "cat", label 1 is "dog".
var classes = [...]string{"cat", "dog"}

// Classes returns the class names in label order (a fresh slice).
func Classes() []string { return append([]string(nil), classes[:]...) }

// Split names, in the order of PrepareOptions.Fractions.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// Splits returns the split names in order: train, val, test.
func Splits() []string { return []string{SplitTrain, SplitVal, SplitTest} }

// DefaultFractions is the 80/10/10 train/val/test split.
var defaultFractions = [3]float64{0.8, 0.1, 0.1}

// DefaultFractions returns 0.8, 0.1, 0.1.
func DefaultFractions() [3]float64 { return defaultFractions }

// LabelOf infers the label of a file from its path relative to the data folder: a directory named
// Cat/Dog (any case, also cats/dogs) as in the Kaggle PetImages layout, or a file name starting
// with "cat." / "dog." as in the flat Kaggle layout. ok is false when the path names no class or
// names two different ones.
func LabelOf(rel string) (label int, ok bool, why string) {
	rel = path.Clean(strings.ReplaceAll(rel, "\\", "/"))
	label = -1
	parts := strings.Split(rel, "/")
	for _, dir := range parts[:len(parts)-1] {
		if l := classIndex(strings.TrimSuffix(strings.ToLower(dir), "s")); l >= 0 {
			if label >= 0 && label != l {
				return -1, false, fmt.Sprintf("folders name both %s and %s", classes[label], classes[l])
			}
			label = l
		}
	}
	base := strings.ToLower(parts[len(parts)-1])
	if prefix, _, found := strings.Cut(base, "."); found {
		if l := classIndex(prefix); l >= 0 {
			if label >= 0 && label != l {
				return -1, false, fmt.Sprintf("folder says %s but file name says %s", classes[label], classes[l])
			}
			label = l
		}
	}
	if label < 0 {
		return -1, false, "no Cat/ or Dog/ folder and no cat.N/dog.N file name"
	}
	return label, true, ""
}

func classIndex(name string) int {
	for i, c := range classes {
		if name == c {
			return i
		}
	}
	return -1
}

// validFractions checks that f holds non-negative fractions summing to 1 with a non-empty train part.
func validFractions(f [3]float64) error {
	sum := 0.0
	for _, v := range f {
		if v < 0 || math.IsNaN(v) {
			return fmt.Errorf("imageprep: split fractions %v: negative or NaN", f)
		}
		sum += v
	}
	if math.Abs(sum-1) > 1e-6 || f[0] == 0 {
		return fmt.Errorf("imageprep: split fractions %v must sum to 1 with a non-zero train part", f)
	}
	return nil
}

// AssignSplits sets Split on every sample: a stratified split where each class is sorted by path,
// shuffled with a PCG generator seeded by (seed, label), and cut at the rounded cumulative
// fractions (train, val, test). The result depends only on the set of paths, labels, fractions
// and seed — never on the input order — so the same seed always gives the same split.
func AssignSplits(samples []Sample, fractions [3]float64, seed int64) error {
	if err := validFractions(fractions); err != nil {
		return err
	}
	byClass := map[int][]int{}
	for i, s := range samples {
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	labels := make([]int, 0, len(byClass))
	for l := range byClass {
		labels = append(labels, l)
	}
	sort.Ints(labels)
	names := Splits()
	for _, l := range labels {
		idx := byClass[l]
		sort.Slice(idx, func(a, b int) bool { return samples[idx[a]].Path < samples[idx[b]].Path })
		rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15^uint64(l)))
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		n := float64(len(idx))
		cut1 := int(math.Round(n * fractions[0]))
		cut2 := int(math.Round(n * (fractions[0] + fractions[1])))
		for k, i := range idx {
			switch {
			case k < cut1:
				samples[i].Split = names[0]
			case k < cut2:
				samples[i].Split = names[1]
			default:
				samples[i].Split = names[2]
			}
		}
	}
	return nil
}
