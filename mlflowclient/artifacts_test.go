package mlflowclient

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestArtifactsRoundTrip(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	exp, err := c.GetOrCreateExperiment(ctx, uniq(t, "art"), false)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: exp.ID})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := map[string][]byte{
		"weights.bin":             randomBytes(t, 3<<20),
		"model.json":              []byte(`{"arch":"resnet18"}`),
		"empty.txt":               {},
		"plots/curves.png":        randomBytes(t, 1234),
		"deep/a/b/c/manifest.csv": []byte("path,md5\n"),
		"with space/x y.txt":      []byte("spaces"),
	}
	for p, b := range files {
		writeFile(t, filepath.Join(src, filepath.FromSlash(p)), b)
	}
	root, err := c.RunArtifactRoot(ctx, run.Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("mlflow-artifacts:/%s/%s/artifacts", exp.ID, run.Info.RunID); root.String() != want {
		t.Fatalf("run artifact root = %s, want %s", root, want)
	}
	if err := c.UploadDir(ctx, root, src, "model"); err != nil {
		t.Fatal(err)
	}
	// the server stored every byte (Content-Length was sent; nothing truncated)
	for p, b := range files {
		got, err := os.ReadFile(filepath.Join(server.ArtifactsDir(), exp.ID, run.Info.RunID, "artifacts", "model", filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("server-side %s: %d bytes, err %v; want %d bytes", p, len(got), err, len(b))
		}
	}
	// listing: direct children, run-relative paths, directories flagged
	ls, err := c.listArtifacts(ctx, root, "model")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range ls {
		names = append(names, fmt.Sprintf("%s:%t", f.Path, f.IsDir))
	}
	want := "[model/deep:true model/empty.txt:false model/model.json:false model/plots:true model/weights.bin:false model/with space:true]"
	if fmt.Sprint(names) != want {
		t.Fatalf("listArtifacts = %v\nwant %s", names, want)
	}
	rl, err := c.listRunArtifacts(ctx, run.Info.RunID, "model/plots")
	if err != nil || len(rl) != 1 || rl[0].Path != "model/plots/curves.png" || rl[0].FileSize != 1234 {
		t.Fatalf("listRunArtifacts = %+v, %v", rl, err)
	}
	// download the tree back
	dst := t.TempDir()
	got, err := c.DownloadDir(ctx, root, "model", dst)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if len(got) != len(files) {
		t.Fatalf("DownloadDir wrote %v, want %d files", got, len(files))
	}
	for p, b := range files {
		d, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(d, b) {
			t.Fatalf("downloaded %s differs (%d vs %d bytes, %v)", p, len(d), len(b), err)
		}
	}
	// the official client sees the same bytes
	e := testenv.MLflowExpectation{TrackingURI: server.URI, RunID: run.Info.RunID, Artifacts: map[string]string{}}
	for _, p := range []string{"weights.bin", "empty.txt", "with space/x y.txt"} {
		e.Artifacts["model/"+p] = filepath.Join(src, filepath.FromSlash(p))
	}
	testenv.CheckMLflow(t, e)

	// missing artifact: typed 404
	if _, err := c.openArtifact(ctx, root, "model/nope.bin"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("openArtifact(missing) err = %v, want ErrNotFound", err)
	}
	if _, err := c.DownloadDir(ctx, root, "nothing-here", t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DownloadDir(empty) err = %v, want ErrNotFound", err)
	}
}

func TestArtifactRootResolution(t *testing.T) {
	c := newTestClient(t)
	tests := []struct {
		uri     string
		wantURL string
		wantErr error
	}{
		{"mlflow-artifacts:/1/abc/artifacts", server.URI + "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/f.txt", nil},
		{"mlflow-artifacts://other:5000/1/abc/artifacts", "http://other:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/f.txt", nil},
		{"s3://bucket/1/abc/artifacts", "", ErrNotProxied},
		{"file:///tmp/mlruns/1/abc/artifacts", "", ErrNotProxied},
		{"/tmp/mlruns", "", ErrNotProxied},
	}
	for _, tc := range tests {
		root, err := c.ResolveArtifactURI(tc.uri)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("ResolveArtifactURI(%q) err = %v, want %v", tc.uri, err, tc.wantErr)
			}
			continue
		}
		if err != nil || root.fileURL("f.txt") != tc.wantURL {
			t.Errorf("ResolveArtifactURI(%q) -> %q, %v; want %q", tc.uri, root.fileURL("f.txt"), err, tc.wantURL)
		}
	}
	for _, bad := range []string{"../x", "a/../../b", "/abs", `a\b`, "a#b"} {
		var verr *ValidationError
		if err := ValidateArtifactPath(bad); !errors.As(err, &verr) {
			t.Errorf("ValidateArtifactPath(%q) = %v, want *ValidationError", bad, err)
		}
	}
}
