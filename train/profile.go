package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/atomicfile"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// referenceProfile computes the drift reference of the training split ds of the prepared
// directory dataDir: the per-image features (imageprep.ImageFeatures) of every cached image —
// the very pixels serving computes them from — with the original size from the manifest and
// the file size from the source photos (prepared.json's source folder, which must still be
// there).
func referenceProfile(dataDir string, prep *imageprep.Prepared, ds *imageprep.Dataset) (*drift.Profile, error) {
	f, err := os.Open(filepath.Join(dataDir, imageprep.ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("train: drift profile: %w", err)
	}
	samples, err := imageprep.ReadManifest(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("train: drift profile: %w", err)
	}
	byPath := make(map[string]imageprep.Sample, len(samples))
	for _, s := range samples {
		byPath[s.Path] = s
	}
	rows := make([]imageprep.Features, 0, ds.N)
	for i, p := range ds.Paths {
		s, ok := byPath[p]
		if !ok {
			return nil, fmt.Errorf("train: drift profile: %s is in the %s split but not in %s", p, ds.Split, imageprep.ManifestFile)
		}
		st, err := os.Stat(filepath.Join(prep.Source, filepath.FromSlash(p)))
		if err != nil {
			return nil, fmt.Errorf("train: drift profile needs the photos' file sizes, and the source photo of the prepared data is gone (prepare again from the photos): %w", err)
		}
		feat, err := imageprep.ImageFeatures(ds.Image(i), ds.Size, imageprep.Source{Width: s.Width, Height: s.Height}, int(st.Size()))
		if err != nil {
			return nil, fmt.Errorf("train: drift profile: %s: %w", p, err)
		}
		rows = append(rows, feat)
	}
	tab := imagedrift.Table(rows)
	if tab.Rows() > drift.MaxProfileRows {
		tab = firstRows(tab, drift.MaxProfileRows)
	}
	return drift.NewProfile(tab, ds.Size, fmt.Sprintf("%s split of %s (%d images)", ds.Split, dataDir, ds.N), time.Now())
}

// firstRows keeps the first n rows (the split order is already a seeded shuffle).
func firstRows(t drift.Table, n int) drift.Table {
	out := drift.Table{Names: t.Names, Kinds: t.Kinds}
	for _, c := range t.Columns {
		out.Columns = append(out.Columns, c[:n])
	}
	return out
}

// predictionProfile summarises what the model predicted on a split: the share of each class and
// every top-class probability.
func predictionProfile(split string, classes []string, probs [][]float32) *drift.PredictionProfile {
	pp := &drift.PredictionProfile{Split: split, Rows: len(probs), ClassShare: map[string]float64{}}
	for _, c := range classes {
		pp.ClassShare[c] = 0
	}
	for _, row := range probs {
		best := 0
		for c := range row {
			if row[c] > row[best] {
				best = c
			}
		}
		pp.ClassShare[classes[best]] += 1 / float64(len(probs))
		pp.Confidence = append(pp.Confidence, float64(row[best]))
	}
	return pp
}

// writeProfile writes the profile into the model directory.
func writeProfile(dir string, p *drift.Profile) error {
	if err := atomicfile.Write(filepath.Join(dir, modeldir.DriftProfile), 0o644, p.Encode); err != nil {
		return fmt.Errorf("train: drift profile: %w", err)
	}
	return nil
}

// embeddingProfile summarises the penultimate layer of net on a split (no test-time mirror).
func embeddingProfile(ctx context.Context, net *model.Network, ds *imageprep.Dataset, p Params) (*drift.EmbeddingProfile, error) {
	var emb []float32
	batches, errc := evalBatches(ctx, ds, p.Spec(), p.BatchSize, p.workers())
	for b := range batches {
		e, err := net.Embeddings(b.x, b.n, p.InputSize)
		if err != nil {
			for range batches { // let the producer finish
			}
			return nil, err
		}
		emb = append(emb, e...)
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	return drift.NewEmbeddingProfile("global average pool of the last stage (input of the linear head), "+ds.Split+" split", net.EmbeddingDim(), emb)
}
