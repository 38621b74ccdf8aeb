package gha_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/catdog-mlops/catdog/internal/testenv"

	"github.com/catdog-mlops/catdog/internal/cachedir"
)

// actionlint finds the pinned actionlint that `make deps` installs into $CATDOG_CACHE/gobin.
func actionlint(t *testing.T) string {
	t.Helper()
	cache, err := cachedir.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if p := filepath.Join(cache, "gobin", "actionlint"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("actionlint"); err == nil {
		return p
	}
	t.Fatal("actionlint not found; run `make deps` (make test does it): it installs github.com/rhysd/actionlint/cmd/actionlint from the Go module proxy")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestWorkflowsPassActionlint(t *testing.T) {
	root := testenv.RepoRoot(t)
	bin := actionlint(t)
	shellcheck := testenv.LookPath(t, "shellcheck", "apt-get install shellcheck")
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if len(files) < 2 {
		t.Fatalf("found workflows %v, want ci.yml and cd.yml", files)
	}
	// -pyflakes= : no Python in the workflows. shellcheck checks every run: block.
	out, err := testenv.RunErr(root, nil, bin, append([]string{"-shellcheck=" + shellcheck, "-pyflakes=", "-no-color"}, files...)...)
	if err != nil {
		t.Fatalf("actionlint found problems (%v):\n%s", err, out)
	}
	// actionlint itself must catch a broken workflow, or this test proves nothing.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt_name }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := testenv.RunErr(root, nil, bin, "-shellcheck=", "-pyflakes=", bad); err == nil || !strings.Contains(out, "evnt_name") {
		t.Fatalf("actionlint accepted a typo in an expression: %v\n%s", err, out)
	}
}

type workflow struct {
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Needs       any               `yaml:"needs"`
		If          string            `yaml:"if"`
		Uses        string            `yaml:"uses"`
		With        map[string]string `yaml:"with"`
		Permissions map[string]string `yaml:"permissions"`
		Outputs     map[string]string `yaml:"outputs"`
		Environment any               `yaml:"environment"`
		Concurrency map[string]any    `yaml:"concurrency"`
		Steps       []struct {
			ID   string            `yaml:"id"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, name string) (workflow, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w, string(b)
}

func TestCIWorkflow(t *testing.T) {
	w, raw := readWorkflow(t, "ci.yml")
	if strings.Contains(raw, "::set-output") || strings.Contains(raw, "::save-state") {
		t.Error("ci.yml uses deprecated workflow commands")
	}
	if len(w.Permissions) != 1 || w.Permissions["contents"] != "read" {
		t.Errorf("top-level permissions %v, want contents: read only", w.Permissions)
	}
	for name, job := range w.Jobs {
		if job.Permissions["packages"] == "write" && name != "image" {
			t.Errorf("job %s has packages: write; only the image job needs it", name)
		}
	}
	img := w.Jobs["image"]
	if img.Permissions["packages"] != "write" {
		t.Errorf("image job permissions %v, want packages: write", img.Permissions)
	}
	var build, run, push bool
	for _, s := range img.Steps {
		switch {
		case strings.Contains(s.Run, "catdog image build"):
			build = strings.Contains(s.Run, "SOURCE_DATE_EPOCH")
		case strings.Contains(s.Run, "catdog image run"):
			run = true
		case strings.Contains(s.Run, "catdog image push"):
			push = s.ID == "push" && s.Env["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}" && strings.Contains(s.Run, "ghcr.io/")
		}
	}
	if !build || !run || !push {
		t.Errorf("image job steps: build with SOURCE_DATE_EPOCH %t, smoke run %t, push to ghcr with GITHUB_TOKEN %t", build, run, push)
	}
	if img.Outputs["digest"] != "${{ steps.push.outputs.digest }}" || img.Outputs["image"] != "${{ steps.push.outputs.image }}" {
		t.Errorf("image job outputs %v", img.Outputs)
	}
	deploy := w.Jobs["deploy"]
	if deploy.Uses != "./.github/workflows/cd.yml" || deploy.With["image"] != "${{ needs.image.outputs.image }}" ||
		!strings.Contains(deploy.If, "refs/heads/main") {
		t.Errorf("deploy job = %+v, want cd.yml called on main with the pushed digest reference", deploy)
	}
	test := w.Jobs["test"]
	var makeTest, report bool
	for _, s := range test.Steps {
		makeTest = makeTest || strings.Contains(s.Run, "make test") && strings.Contains(s.Run, "pipefail")
		report = report || s.If == "failure()" && strings.Contains(s.Run, "catdog gha test-report test.log")
	}
	if !makeTest || !report {
		t.Errorf("test job: make test (pipefail) %t, failure annotations with catdog gha test-report %t", makeTest, report)
	}
}

func TestCDWorkflow(t *testing.T) {
	w, _ := readWorkflow(t, "cd.yml")
	call, ok := w.On["workflow_call"].(map[string]any)
	if !ok {
		t.Fatal("cd.yml is not callable (on.workflow_call)")
	}
	inputs, _ := call["inputs"].(map[string]any)
	image, _ := inputs["image"].(map[string]any)
	if image["required"] != true || image["type"] != "string" {
		t.Errorf("workflow_call input image = %v", image)
	}
	var pinned, smoke bool
	for _, s := range w.Jobs["smoke"].Steps {
		pinned = pinned || strings.Contains(s.Run, "@sha256:")
		smoke = smoke || strings.Contains(s.Run, `catdog image run --image "$IMAGE"`)
	}
	if !pinned || !smoke {
		t.Errorf("cd smoke job: digest check %t, pull+run+smoke %t", pinned, smoke)
	}
	if w.Permissions["packages"] != "read" {
		t.Errorf("cd permissions %v, want packages: read", w.Permissions)
	}
	deploy := w.Jobs["deploy"]
	var secret, deployStep bool
	for _, st := range deploy.Steps {
		secret = secret || st.Env["KUBECONFIG_DATA"] == "${{ secrets.KUBECONFIG }}" && strings.Contains(st.Run, "umask 077")
		deployStep = deployStep || st.ID == "deploy" && strings.Contains(st.Run, `catdog deploy --image "$IMAGE"`)
	}
	if deploy.Environment != "production" || deploy.Concurrency["group"] == nil || deploy.Concurrency["cancel-in-progress"] != false {
		t.Errorf("deploy job: environment %v, concurrency %v", deploy.Environment, deploy.Concurrency)
	}
	if !secret || !deployStep || deploy.Outputs["result"] == "" {
		t.Errorf("deploy job: kubeconfig from the secret %t, catdog deploy step %t, outputs %v", secret, deployStep, deploy.Outputs)
	}
}

// TestCIImageShipsTheChampion: the image job builds the registered model, not one it trained:
// it pulls models:/catdog@champion (or the version train.yml dispatched) from the team's MLflow
// server, and only without a tracking server trains a small model, saying so in the summary.
func TestCIImageShipsTheChampion(t *testing.T) {
	w, raw := readWorkflow(t, "ci.yml")
	if _, ok := w.On["workflow_dispatch"]; !ok {
		t.Error("ci.yml cannot be started by train.yml (no workflow_dispatch)")
	}
	var pull, fallback, summary bool
	for _, s := range w.Jobs["image"].Steps {
		if strings.Contains(s.Run, "make run") {
			t.Errorf("the image job still trains with make run: %q", s.Run)
		}
		if strings.Contains(s.Run, "catdog model pull \"$MODEL_URI\"") {
			pull = s.Env["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}" && s.Env["MLFLOW_TRACKING_TOKEN"] == "${{ secrets.MLFLOW_TRACKING_TOKEN }}" &&
				strings.Contains(s.Env["MODEL_URI"], "models:/catdog@champion")
			fallback = strings.Contains(s.Run, `if [ -n "$MLFLOW_TRACKING_URI" ]`) && strings.Contains(s.Run, "make model-small")
			summary = strings.Contains(s.Run, "GITHUB_STEP_SUMMARY") && strings.Contains(s.Run, "not** the registered champion")
		}
	}
	if !pull || !fallback || !summary {
		t.Errorf("image job: pull the champion with the MLflow secrets %t, small-model fallback %t, said in the step summary %t", pull, fallback, summary)
	}
	if !strings.Contains(raw, "model-small") {
		t.Error("no fallback model")
	}
}

// TestTrainWorkflow: train.yml retrains on the four triggers, with the DVC and MLflow
// credentials from secrets, runs the pipeline and the gate, and starts the image build for the
// promoted version only when the champion moved.
func TestTrainWorkflow(t *testing.T) {
	w, raw := readWorkflow(t, "train.yml")
	for _, trig := range []string{"workflow_dispatch", "schedule", "repository_dispatch", "push"} {
		if _, ok := w.On[trig]; !ok {
			t.Errorf("train.yml is not triggered by %s", trig)
		}
	}
	if rd, _ := w.On["repository_dispatch"].(map[string]any); fmt.Sprint(rd["types"]) != "[retrain]" {
		t.Errorf("repository_dispatch types = %v, want [retrain]", rd["types"])
	}
	push, _ := w.On["push"].(map[string]any)
	if paths := fmt.Sprint(push["paths"]); !strings.Contains(paths, "**.dvc") || !strings.Contains(paths, "dvc.yaml") || !strings.Contains(paths, "params.yaml") {
		t.Errorf("push paths = %v", paths)
	}
	if len(w.Permissions) != 1 || w.Permissions["contents"] != "read" {
		t.Errorf("top-level permissions %v", w.Permissions)
	}
	for _, secret := range []string{"secrets.MLFLOW_TRACKING_URI", "secrets.MLFLOW_TRACKING_TOKEN", "secrets.DVC_S3_ACCESS_KEY_ID", "secrets.DVC_S3_SECRET_ACCESS_KEY"} {
		if !strings.Contains(raw, secret) {
			t.Errorf("train.yml does not use %s", secret)
		}
	}
	tr := w.Jobs["train"]
	var pull, repro, gate bool
	for _, s := range tr.Steps {
		pull = pull || strings.Contains(s.Run, "catdog data pull")
		repro = repro || strings.Contains(s.Run, "catdog repro")
		gate = gate || s.ID == "promote" && strings.Contains(s.Run, "catdog model promote")
	}
	if !pull || !repro || !gate {
		t.Errorf("train job: data pull %t, catdog repro %t, promote step %t", pull, repro, gate)
	}
	if tr.Outputs["champion_moved"] != "${{ steps.promote.outputs.champion_moved }}" || tr.Outputs["version"] != "${{ steps.promote.outputs.version }}" {
		t.Errorf("train job outputs %v", tr.Outputs)
	}
	img := w.Jobs["image"]
	if img.If != "needs.train.outputs.champion_moved == 'true'" || img.Permissions["actions"] != "write" ||
		len(img.Steps) != 1 || !strings.Contains(img.Steps[0].Run, "gh workflow run ci.yml") || !strings.Contains(img.Steps[0].Run, `models:/catdog/$VERSION`) {
		t.Errorf("image job = %+v", img)
	}
}
