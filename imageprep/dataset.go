package imageprep

import (
	"fmt"
	"os"
	"path/filepath"
)

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
