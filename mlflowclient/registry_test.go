package mlflowclient

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestParseModelURI(t *testing.T) {
	tests := []struct {
		in   string
		want ModelURI
		err  bool
	}{
		{"models:/catdog@champion", ModelURI{Name: "catdog", Alias: "champion"}, false},
		{"models:/catdog/3", ModelURI{Name: "catdog", Version: "3"}, false},
		{"models:/catdog/latest", ModelURI{Name: "catdog", Latest: true}, false},
		{"models:/catdog@champion/data/x.bin", ModelURI{Name: "catdog", Alias: "champion", SubPath: "data/x.bin"}, false},
		{"models:/catdog/2/MLmodel", ModelURI{Name: "catdog", Version: "2", SubPath: "MLmodel"}, false},
		{"runs:/abc/model", ModelURI{}, true},
		{"models:/catdog", ModelURI{}, true},
		{"models:/catdog/Production", ModelURI{}, true},
		{"models:/catdog@bad alias", ModelURI{}, true},
		{"models:/catdog@latest", ModelURI{}, true},
		{"models:/catdog/1/../../x", ModelURI{}, true},
	}
	for _, tc := range tests {
		got, err := parseModelURI(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseModelURI(%q) = %+v, %v; want %+v, err=%t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestRegistryAliasesAndDownload registers two versions, moves the champion alias only on a
// better metric, and downloads by alias and by version; the Python client agrees.
func TestRegistryAliasesAndDownload(t *testing.T) {
	ctx, c := testCtx(t), newTestClient(t)
	exp, err := c.GetOrCreateExperiment(ctx, uniq(t, "reg"), false)
	if err != nil {
		t.Fatal(err)
	}
	name := uniq(t, "model")
	if err := c.EnsureRegisteredModel(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureRegisteredModel(ctx, name); err != nil { // already exists: fine
		t.Fatalf("EnsureRegisteredModel twice: %v", err)
	}
	if _, err := c.CreateRegisteredModel(ctx, name, ""); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("CreateRegisteredModel(dup) err = %v", err)
	}

	type trained struct {
		runID, version, dir string
	}
	var versions []trained
	for i, acc := range []float64{0.80, 0.75, 0.90} {
		run, err := c.CreateRun(ctx, CreateRunRequest{ExperimentID: exp.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.LogMetric(ctx, run.Info.RunID, "test_accuracy", acc, 0); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "best_model.ot"), randomBytes(t, 50_000+i))
		mlm, _ := MLmodel{Flavors: map[string]map[string]any{"catdog": {"model_data": "best_model.ot"}}, RunID: run.Info.RunID, ModelUUID: "u", UTCTimeCreated: "2026-01-01 00:00:00.000000"}.Marshal()
		writeFile(t, filepath.Join(dir, "MLmodel"), mlm)
		root, _ := c.RunArtifactRoot(ctx, run.Info.RunID)
		if err := c.UploadDir(ctx, root, dir, "model"); err != nil {
			t.Fatal(err)
		}
		var mv *ModelVersion
		if i == 0 { // runs:/ sources are resolved to the concrete artifact URI
			mv, err = c.CreateModelVersion(ctx, name, "runs:/"+run.Info.RunID+"/model", "")
		} else {
			mv, err = c.CreateModelVersion(ctx, name, root.Join("model").String(), run.Info.RunID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if mv.Source != root.Join("model").String() || mv.RunID != run.Info.RunID || mv.Status != "READY" {
			t.Fatalf("model version = %+v", mv)
		}
		p, err := c.PromoteIfBetter(ctx, name, "champion", mv.Version, "test_accuracy", acc)
		if err != nil {
			t.Fatal(err)
		}
		wantPromoted := i != 1 // 0.80 (first), 0.75 (worse), 0.90 (better)
		if p.Promoted != wantPromoted {
			t.Fatalf("version %s acc %.2f: promoted = %t (%+v), want %t", mv.Version, acc, p.Promoted, p, wantPromoted)
		}
		versions = append(versions, trained{run.Info.RunID, mv.Version, dir})
	}
	champ, err := c.GetModelVersionByAlias(ctx, name, "champion")
	if err != nil || champ.Version != versions[2].version || len(champ.Aliases) != 1 {
		t.Fatalf("champion = %+v, %v; want version %s", champ, err, versions[2].version)
	}
	vs, _, err := c.SearchModelVersions(ctx, ModelVersionQuery{Filter: "name='" + name + "'"})
	if err != nil || len(vs) != 3 {
		t.Fatalf("SearchModelVersions = %d versions, %v", len(vs), err)
	}

	// download by alias, by version and latest
	for uri, want := range map[string]trained{
		"models:/" + name + "@champion": versions[2],
		"models:/" + name + "/1":        versions[0],
		"models:/" + name + "/latest":   versions[2],
	} {
		out := t.TempDir()
		mv, files, err := c.DownloadModel(ctx, uri, out)
		if err != nil || mv.Version != want.version || len(files) != 2 {
			t.Fatalf("DownloadModel(%s) = %+v, %v, %v", uri, mv, files, err)
		}
		a, _ := os.ReadFile(filepath.Join(out, "best_model.ot"))
		b, _ := os.ReadFile(filepath.Join(want.dir, "best_model.ot"))
		if string(a) != string(b) {
			t.Fatalf("DownloadModel(%s): best_model.ot differs", uri)
		}
		mlm, err := os.ReadFile(filepath.Join(out, "MLmodel"))
		if m, perr := ParseMLmodel(mlm); err != nil || perr != nil || m.RunID != want.runID {
			t.Fatalf("downloaded MLmodel: %v %v %+v", err, perr, m)
		}
	}
	testenv.CheckMLflow(t, testenv.MLflowExpectation{TrackingURI: server.URI, RunID: versions[2].runID,
		Model: &testenv.MLflowModelExpect{Name: name, Version: versions[2].version, Alias: "champion",
			Files: map[string]string{"best_model.ot": filepath.Join(versions[2].dir, "best_model.ot")}, MLmodelFlavor: "catdog"}})

	// aliases can be deleted; a missing alias is ErrNotFound
	if err := c.DeleteAlias(ctx, name, "champion"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetModelVersionByAlias(ctx, name, "champion"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted alias: err = %v, want ErrNotFound", err)
	}
	if _, _, err := c.ResolveModelURI(ctx, "models:/"+name+"@champion"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ResolveModelURI(deleted alias) err = %v, want ErrNotFound", err)
	}
}
