package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/inference"
	"github.com/catdog-mlops/catdog/internal/testenv"
	"github.com/catdog-mlops/catdog/mlflowclient"
)

// TestServeFromRegistry registers the trained model in a real MLflow server, then starts
// `catdog serve --model models:/NAME@champion`, which downloads it through mlflowclient and
// reports the registry's name, version and run id.
func TestServeFromRegistry(t *testing.T) {
	mlflow := testenv.StartMLflow(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := mlflowclient.New(mlflow.URI)
	if err != nil {
		t.Fatal(err)
	}
	run, err := cl.CreateRun(ctx, mlflowclient.CreateRunRequest{ExperimentID: "0", RunName: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	runID := run.Info.RunID
	root, err := cl.RunArtifactRoot(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UploadDir(ctx, root, fixture.modelDir, "model"); err != nil {
		t.Fatal(err)
	}
	const name = "catdog-serve-e2e"
	if err := cl.EnsureRegisteredModel(ctx, name); err != nil {
		t.Fatal(err)
	}
	var mv *mlflowclient.ModelVersion
	for range 2 { // two versions: the alias must pick the second
		if mv, err = cl.CreateModelVersion(ctx, name, "runs:/"+runID+"/model", runID); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.SetAlias(ctx, name, "champion", mv.Version); err != nil {
		t.Fatal(err)
	}

	s := startServe(t, "--model", "models:/"+name+"@champion", "--tracking-uri", mlflow.URI, "--drain-delay", "0")
	var v inference.VersionResponse
	if err := json.Unmarshal(get(t, s.url+"/version").body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Model.Name != name || v.Model.Version != mv.Version || v.Model.RunID != runID || v.Model.Source != "models:/"+name+"@champion" {
		t.Errorf("/version model = %+v, want %s version %s run %s", v.Model, name, mv.Version, runID)
	}
	metric := fmt.Sprintf(`catdog_model_info{name=%q,run_id=%q,version=%q} 1`, name, runID, mv.Version)
	if body := string(get(t, s.url+"/metrics").body); !strings.Contains(body, metric) {
		t.Errorf("/metrics lacks %s", metric)
	}
	resp := post(t, s.url+"/predict", "image/jpeg", readFile(t, devPhoto(t, "cat.800.jpg")))
	var p inference.PredictResponse
	if err := json.Unmarshal(resp.body, &p); err != nil || resp.status != 200 || p.ModelVersion != mv.Version {
		t.Errorf("predict: %d %s", resp.status, resp.body)
	}

	t.Run("unknown alias fails to start", func(t *testing.T) {
		out, err := testenv.RunErr(t.TempDir(), nil, fixture.bin, "serve", "--model", "models:/"+name+"@nope",
			"--tracking-uri", mlflow.URI, "--addr", "127.0.0.1:0")
		if err == nil || !strings.Contains(out, "nope") {
			t.Errorf("serve with an unknown alias: err %v, output:\n%s", err, out)
		}
	})
	t.Run("models URI without tracking server", func(t *testing.T) {
		out, err := testenv.RunErr(t.TempDir(), []string{"MLFLOW_TRACKING_URI="}, fixture.bin, "serve", "--model", "models:/"+name+"@champion", "--addr", "127.0.0.1:0")
		if err == nil || !strings.Contains(out, "MLFLOW_TRACKING_URI") {
			t.Errorf("serve without tracking URI: err %v, output:\n%s", err, out)
		}
	})
}
