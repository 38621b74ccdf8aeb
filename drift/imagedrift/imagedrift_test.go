package imagedrift_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/catdog-mlops/catdog/drift/imagedrift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestFilesSkipsBadInputsAndReportsProgress(t *testing.T) {
	shared := testenv.SharedData(t)
	dir := t.TempDir()
	good := filepath.Join(shared, "petimages-dev", "Cat", "cat.1.jpg")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.jpg"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths, err := imagedrift.ListImages(dir, 0)
	if err != nil || len(paths) != 2 {
		t.Fatalf("ListImages = %v, %v", paths, err)
	}
	if _, err := imagedrift.ListImages(dir, 1); err == nil {
		t.Error("ListImages ignored maxFiles")
	}
	var calls, last int
	rows, skipped, err := imagedrift.Files(context.Background(), paths, imagedrift.FilesOptions{Size: 64, Progress: func(done, total int) {
		calls++
		last = done
		if total != 2 {
			t.Errorf("total %d", total)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(skipped) != 1 || skipped[0].Reason != imageprep.ReasonUnknownFormat || calls != 2 || last != 2 {
		t.Fatalf("rows %d, skipped %+v, progress %d calls (last %d)", len(rows), skipped, calls, last)
	}
	want, _ := imageprep.FileFeatures(data, 64, imageprep.Limits{})
	if rows[0] != want {
		t.Errorf("features %v, want %v", rows[0], want)
	}
	tab := imagedrift.Table(rows)
	if err := tab.Validate(); err != nil || tab.Rows() != 1 || tab.Column(imageprep.FeatureGrayscale) == nil {
		t.Errorf("table %+v: %v", tab, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := imagedrift.Files(ctx, paths, imagedrift.FilesOptions{Size: 64}); err == nil {
		t.Error("cancelled context: no error")
	}
}
