package model

import "testing"

// BenchmarkProbabilitiesTTA is one serving request's model work: the default architecture at
// 224×224, one image, test-time augmentation (image + mirror).
func BenchmarkProbabilitiesTTA(b *testing.B) {
	SetThreads(2)
	n, err := NewNetwork(DefaultArch())
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	x := make([]float32, 3*224*224)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	if _, err := n.Probabilities(x, 1, 224, true); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := n.Probabilities(x, 1, 224, true); err != nil {
			b.Fatal(err)
		}
	}
}
