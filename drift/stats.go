package drift

import (
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// The two-sample statistics below are the ones Evidently's DataDriftPreset uses by default,
// computed the way Evidently computes them (through SciPy and NumPy), so that catdog's live
// metrics and batch reports agree with an Evidently report on the same feature table; the
// agreement test runs Evidently itself.

// KSResult is a two-sample Kolmogorov–Smirnov test.
type KSResult struct {
	D      float64 // largest distance between the two empirical CDFs
	PValue float64 // two-sided
	Exact  bool    // false when the asymptotic distribution was used
}

// maxExactKS is the sample size up to which the exact p-value is computed, as SciPy's
// ks_2samp(method="auto") does.
const maxExactKS = 10000

// KS2Samp is SciPy's ks_2samp(ref, cur) with the default two-sided alternative and method
// "auto": D from the empirical CDFs, and the exact p-value of the Smirnov statistic (the
// Hodges/Viehmann lattice-path recursion) when both samples have at most 10,000 values. Above
// that it uses the limiting Kolmogorov distribution with the effective sample size
// n1·n2/(n1+n2), which is close to but not exactly SciPy's kstwo. Neither sample may be empty.
func KS2Samp(ref, cur []float64) KSResult {
	x, y := sortedCopy(ref), sortedCopy(cur)
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return KSResult{D: math.NaN(), PValue: math.NaN()}
	}
	d := stat.KolmogorovSmirnov(x, nil, y, nil)
	if max(n1, n2) <= maxExactKS {
		if p, ok := ksExact(n1, n2, d); ok {
			return KSResult{D: d, PValue: p, Exact: true}
		}
	}
	en := float64(n1) * float64(n2) / float64(n1+n2)
	return KSResult{D: d, PValue: clamp01(kolmogorovSF(d * math.Sqrt(math.Round(en))))}
}

// ksExact is the exact two-sided p-value P(D ≥ d) for sample sizes n1 and n2; ok is false on a
// numerical failure (then the caller falls back to the asymptotic distribution, as SciPy does).
func ksExact(n1, n2 int, d float64) (p float64, ok bool) {
	g := gcd(n1, n2)
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	if h == 0 {
		return 1, true
	}
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 || p > 1 {
		return p, false
	}
	return p, true
}

// probOutsideSquare is P(D_{n,n} ≥ h/n): twice the alternating sum of the ratios
// C(2n, n−kh)/C(2n, n), evaluated Horner-style to avoid cancellation.
func probOutsideSquare(n, h int) float64 {
	p := 0.0
	for k := n / h; k >= 0; k-- {
		a := 1.0
		for j := 0; j < h; j++ {
			a = float64(n-k*h-j) * a / float64(n+k*h+j+1)
		}
		p = a * (1 - p)
	}
	return 2 * p
}

// outerProbInside is the share of the lattice paths from (0,0) to (m,n) that leave the band
// |x/m − y/n| < h/lcm(m,n), computed with Viehmann's recursion for 1 − p (arXiv:2102.08037),
// keeping one sliding column.
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(int(math.Ceil(float64(h)/float64(mg))), n+1)
	curlen := maxj - minj
	a := make([]float64, min(2*maxj+2, n+1))
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastmin, lastlen := minj, curlen
		minj = max(int(math.Floor(float64(ng*i-h)/float64(mg)))+1, 0)
		minj = min(minj, n)
		maxj = min(int(math.Ceil(float64(ng*i+h)/float64(mg))), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (a[jj+minj-lastmin]*float64(i) + val*float64(j)) / float64(i+j)
			a[jj] = val
		}
		curlen = maxj - minj
		for k := curlen; k < lastlen; k++ {
			a[k] = 1
		}
	}
	return a[maxj-minj-1]
}

// kolmogorovSF is the survival function of the limiting Kolmogorov distribution,
// 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²x²).
func kolmogorovSF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	if x < 0.2 {
		// The alternating series converges slowly here; the CDF is below 1e-20.
		return 1
	}
	s := 0.0
	for k := 1; k <= 100; k++ {
		t := math.Exp(-2 * float64(k*k) * x * x)
		if k%2 == 1 {
			s += t
		} else {
			s -= t
		}
		if t < 1e-18 {
			break
		}
	}
	return 2 * s
}

// Wasserstein is SciPy's wasserstein_distance(u, v): the 1-Wasserstein (earth mover's)
// distance between the empirical distributions, ∫|F_u − F_v|.
func Wasserstein(u, v []float64) float64 {
	x, y := sortedCopy(u), sortedCopy(v)
	if len(x) == 0 || len(y) == 0 {
		return math.NaN()
	}
	all := append(append(make([]float64, 0, len(x)+len(y)), x...), y...)
	slices.Sort(all)
	nu, nv := float64(len(x)), float64(len(y))
	terms := make([]float64, len(all)-1)
	for i := 0; i+1 < len(all); i++ {
		fu := float64(upperBound(x, all[i])) / nu
		fv := float64(upperBound(y, all[i])) / nv
		terms[i] = math.Abs(fu-fv) * (all[i+1] - all[i])
	}
	return floats.Sum(terms)
}

// WassersteinNorm is Evidently's normed Wasserstein distance: Wasserstein(ref, cur) divided by
// the population standard deviation of ref (at least 0.001).
func WassersteinNorm(ref, cur []float64) float64 {
	return Wasserstein(ref, cur) / math.Max(stat.PopStdDev(ref, nil), 0.001)
}

// PSI is Evidently's population stability index Σ (r_i − c_i)·ln(r_i / c_i) over the bins of
// Binned(ref, cur, numerical, true).
func PSI(ref, cur []float64, numerical bool) float64 {
	r, c := Binned(ref, cur, numerical, true)
	s := make([]float64, len(r))
	for i := range r {
		s[i] = (r[i] - c[i]) * math.Log(r[i]/c[i])
	}
	return floats.Sum(s)
}

// JensenShannon is Evidently's Jensen–Shannon distance (SciPy's
// scipy.spatial.distance.jensenshannon, natural logarithm) between the shares of
// Binned(ref, cur, numerical, false).
func JensenShannon(ref, cur []float64, numerical bool) float64 {
	p, q := Binned(ref, cur, numerical, false)
	sp, sq := floats.Sum(p), floats.Sum(q)
	terms := make([]float64, 0, 2*len(p))
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		terms = append(terms, relEntr(pi, m), relEntr(qi, m))
	}
	return math.Sqrt(floats.Sum(terms) / 2)
}

// relEntr is SciPy's rel_entr: x·ln(x/y), 0 for x = 0.
func relEntr(x, y float64) float64 {
	switch {
	case x == 0 && y >= 0:
		return 0
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	}
	return math.Inf(1)
}

// Binned is Evidently's get_binned_data: the shares of ref and cur per bin. For a numerical
// column whose reference has more than 20 distinct values the bins are NumPy's
// histogram_bin_edges(concat(ref, cur), bins="sturges"); otherwise they are the distinct values
// of both samples. With fillZeros, empty bins get a small share (a millionth of the smallest
// non-zero share when that is at most 0.0001, else 0.0001), so that logarithms stay finite.
func Binned(ref, cur []float64, numerical bool, fillZeros bool) (r, c []float64) {
	if numerical && distinct(ref) > 20 {
		edges := SturgesEdges(ref, cur)
		r, c = histogram(ref, edges), histogram(cur, edges)
	} else {
		keys := sortedUnique(append(append([]float64(nil), ref...), cur...))
		r, c = counts(ref, keys), counts(cur, keys)
	}
	floats.Scale(1/float64(len(ref)), r)
	floats.Scale(1/float64(len(cur)), c)
	if fillZeros {
		fillZeroShares(r)
		fillZeroShares(c)
	}
	return r, c
}

func fillZeroShares(p []float64) {
	least := math.Inf(1)
	for _, v := range p {
		if v != 0 && v < least {
			least = v
		}
	}
	fill := 0.0001
	if least <= 0.0001 {
		fill = least / 1e6
	}
	for i, v := range p {
		if v == 0 {
			p[i] = fill
		}
	}
}

// SturgesEdges is NumPy's histogram_bin_edges(concat(a, b), bins="sturges") for float data:
// ceil(range / (range / (log2(n) + 1))) equal-width bins from the minimum to the maximum
// (one bin of ±0.5 when they are equal), edges computed as linspace does.
func SturgesEdges(a, b []float64) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range [][]float64{a, b} {
		for _, v := range s {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	ptp := hi - lo
	n := 1
	if width := ptp / (math.Log2(float64(len(a)+len(b))) + 1); width != 0 {
		n = int(math.Ceil(ptp / width))
	}
	return linearEdges(lo, hi, n)
}

// linearEdges is NumPy's equal-width bin edges for n bins over [lo, hi] (widened by ±0.5 when
// lo equals hi): linspace(lo, hi, n+1).
func linearEdges(lo, hi float64, n int) []float64 {
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	edges := make([]float64, n+1)
	step := (hi - lo) / float64(n)
	for i := range edges {
		edges[i] = float64(i)*step + lo
	}
	edges[n] = hi
	return edges
}

// histogram counts the values per bin [e_i, e_{i+1}), the last bin closed, as NumPy's
// histogram does; values outside the edges are not counted.
func histogram(x, edges []float64) []float64 {
	n := len(edges) - 1
	out := make([]float64, n)
	for _, v := range x {
		if v < edges[0] || v > edges[n] {
			continue
		}
		i := sort.SearchFloat64s(edges, math.Nextafter(v, math.Inf(1))) - 1 // last edge ≤ v
		if i >= n {
			i = n - 1
		}
		out[i]++
	}
	return out
}

// ZTest is Evidently's two-sided z-test for the difference of two proportions, for a column
// with at most two distinct values: the share of values other than the smallest distinct value,
// pooled variance. It returns 1 when both samples hold the same single value.
func ZTest(ref, cur []float64) float64 {
	keys := sortedUnique(append(append([]float64(nil), ref...), cur...))
	if len(keys) <= 1 {
		return 1
	}
	share := func(x []float64) float64 {
		k := 0
		for _, v := range x {
			if v != keys[0] {
				k++
			}
		}
		return float64(k) / float64(len(x))
	}
	n1, n2 := float64(len(ref)), float64(len(cur))
	p1, p2 := share(ref), share(cur)
	p := (p1*n1 + p2*n2) / (n1 + n2)
	z := (p1 - p2) / math.Sqrt(p*(1-p)*(1/n1+1/n2))
	return 2 * (1 - distuv.UnitNormal.CDF(math.Abs(z)))
}

// ChiSquare is Evidently's chi-square test: SciPy's chisquare of the current counts against the
// reference counts scaled to the current sample size, over the distinct values of both.
func ChiSquare(ref, cur []float64) float64 {
	keys := sortedUnique(append(append([]float64(nil), ref...), cur...))
	r, c := counts(ref, keys), counts(cur, keys)
	k := float64(len(cur)) / float64(len(ref))
	terms := make([]float64, len(keys))
	for i := range keys {
		e := r[i] * k
		terms[i] = (c[i] - e) * (c[i] - e) / e
	}
	if len(keys) < 2 {
		return math.NaN()
	}
	return distuv.ChiSquared{K: float64(len(keys) - 1)}.Survival(floats.Sum(terms))
}

func counts(x, keys []float64) []float64 {
	out := make([]float64, len(keys))
	for _, v := range x {
		if i, ok := slices.BinarySearch(keys, v); ok {
			out[i]++
		}
	}
	return out
}

func distinct(x []float64) int { return len(sortedUnique(append([]float64(nil), x...))) }

// sortedUnique sorts x in place and returns its distinct values (NaNs dropped).
func sortedUnique(x []float64) []float64 {
	x = slices.DeleteFunc(x, math.IsNaN)
	slices.Sort(x)
	return slices.Compact(x)
}

func sortedCopy(x []float64) []float64 {
	out := slices.DeleteFunc(append([]float64(nil), x...), math.IsNaN)
	slices.Sort(out)
	return out
}

// upperBound is the number of values in sorted x that are ≤ v.
func upperBound(x []float64, v float64) int {
	return sort.Search(len(x), func(i int) bool { return x[i] > v })
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func clamp01(p float64) float64 { return math.Min(1, math.Max(0, p)) }
