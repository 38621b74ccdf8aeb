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

	// The model the image carries reaches catdog deploy (the Deployment's model annotations and
	// change-cause): catdog image build outputs it from the io.catdog.model.* labels, ci.yml's
	// image job exports it, its deploy job passes it to cd.yml, whose deploy step hands it to
	// catdog deploy through the flags' variables.
	ci, _ := readWorkflow(t, "ci.yml")
	for _, m := range []struct{ input, env string }{
		{"model-name", "CATDOG_MODEL_NAME"}, {"model-version", "CATDOG_MODEL_VERSION"}, {"run-id", "CATDOG_RUN_ID"},
	} {
		if got, want := ci.Jobs["image"].Outputs[m.input], "${{ steps.build.outputs."+m.input+" }}"; got != want {
			t.Errorf("ci.yml image job output %s = %q, want %q", m.input, got, want)
		}
		if got, want := ci.Jobs["deploy"].With[m.input], "${{ needs.image.outputs."+m.input+" }}"; got != want {
			t.Errorf("ci.yml deploy job passes %s = %q, want %q", m.input, got, want)
		}
		for _, trigger := range []string{"workflow_call", "workflow_dispatch"} {
			on, _ := w.On[trigger].(map[string]any)
			ins, _ := on["inputs"].(map[string]any)
			if in, _ := ins[m.input].(map[string]any); in["type"] != "string" || in["required"] == true {
				t.Errorf("cd.yml %s input %s = %v, want an optional string", trigger, m.input, in)
			}
		}
		var passed bool
		for _, st := range deploy.Steps {
			passed = passed || st.ID == "deploy" && st.Env[m.env] == "${{ inputs."+m.input+" }}"
		}
		if !passed {
			t.Errorf("cd.yml deploy step: %s is not ${{ inputs.%s }}", m.env, m.input)
		}
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
	var gateIf, skipIf string
	for _, s := range tr.Steps {
		pull = pull || strings.Contains(s.Run, "catdog data pull")
		repro = repro || s.ID == "pipeline" && strings.Contains(s.Run, "catdog repro")
		if s.ID == "promote" {
			// the version this run registered (catdog train's step output), never "the newest"
			gate = strings.Contains(s.Run, `catdog model promote --data data/prepared --run-id "$RUN_ID"`) &&
				s.Env["RUN_ID"] == "${{ steps.pipeline.outputs.run_id }}"
			gateIf = s.If
		}
		if strings.Contains(s.Run, "the gate did not run") {
			skipIf = s.If
		}
	}
	if !pull || !repro || !gate {
		t.Errorf("train job: data pull %t, catdog repro (id pipeline) %t, promote --run-id of this run %t", pull, repro, gate)
	}
	for _, runID := range []string{"", "0123456789abcdef0123456789abcdef"} {
		ctx := map[string]string{"steps.pipeline.outputs.run_id": runID}
		if got := gateIf != "" && evalIf(t, gateIf, ctx); got != (runID != "") {
			t.Errorf("run_id %q: the gate runs = %t (if: %q)", runID, got, gateIf)
		}
		if got := skipIf != "" && evalIf(t, skipIf, ctx); got != (runID == "") {
			t.Errorf("run_id %q: the up-to-date summary runs = %t (if: %q)", runID, got, skipIf)
		}
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

// evalIf evaluates a workflow `if:` expression of the forms the workflows use (context
// lookups, 'strings', ==, !=, !, &&, ||, parentheses) against ctx, with GitHub's rules: a
// missing context value is "", strings compare case-insensitively, "" is false.
func evalIf(t *testing.T, expr string, ctx map[string]string) bool {
	t.Helper()
	var toks []string
	for s := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(expr), "${{"), "}}")); s != ""; s = strings.TrimSpace(s) {
		switch {
		case strings.HasPrefix(s, "'"):
			end := strings.Index(s[1:], "'")
			if end < 0 {
				t.Fatalf("unterminated string in %q", expr)
			}
			toks, s = append(toks, s[:end+2]), s[end+2:]
		case strings.HasPrefix(s, "==") || strings.HasPrefix(s, "!=") || strings.HasPrefix(s, "&&") || strings.HasPrefix(s, "||"):
			toks, s = append(toks, s[:2]), s[2:]
		case strings.ContainsAny(s[:1], "()!"):
			toks, s = append(toks, s[:1]), s[1:]
		default:
			n := strings.IndexFunc(s, func(r rune) bool {
				return !(r == '.' || r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
			})
			if n == 0 {
				t.Fatalf("cannot parse %q at %q", expr, s)
			}
			if n < 0 {
				n = len(s)
			}
			toks, s = append(toks, s[:n]), s[n:]
		}
	}
	pos := 0
	peek := func() string {
		if pos < len(toks) {
			return toks[pos]
		}
		return ""
	}
	var or, primary func() any
	primary = func() any {
		tok := peek()
		pos++
		switch {
		case tok == "(":
			v := or()
			if peek() != ")" {
				t.Fatalf("missing ) in %q", expr)
			}
			pos++
			return v
		case tok == "!":
			return !truthy(primary())
		case strings.HasPrefix(tok, "'"):
			return strings.Trim(tok, "'")
		case tok == "true" || tok == "false":
			return tok == "true"
		case tok == "":
			t.Fatalf("unexpected end of %q", expr)
		}
		return ctx[tok]
	}
	cmp := func() any {
		l := primary()
		for peek() == "==" || peek() == "!=" {
			op := peek()
			pos++
			r := primary()
			eq := strings.EqualFold(fmt.Sprint(l), fmt.Sprint(r))
			l = eq == (op == "==")
		}
		return l
	}
	and := func() any {
		l := cmp()
		for peek() == "&&" {
			pos++
			r := cmp()
			if truthy(l) {
				l = r
			}
		}
		return l
	}
	or = func() any {
		l := and()
		for peek() == "||" {
			pos++
			r := and()
			if !truthy(l) {
				l = r
			}
		}
		return l
	}
	v := or()
	if pos != len(toks) {
		t.Fatalf("trailing tokens in %q: %v", expr, toks[pos:])
	}
	return truthy(v)
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v != ""
	}
	return false
}

func TestEvalIf(t *testing.T) {
	ctx := map[string]string{"a": "x", "b": ""}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"a == 'X'", true}, {"a != 'x'", false}, {"b", false}, {"!b", true}, {"missing == ''", true},
		{"a == 'y' || b == ''", true}, {"(a == 'y' || a == 'x') && b == 'z'", false}, {"${{ a == 'x' }}", true},
	} {
		if got := evalIf(t, tc.expr, ctx); got != tc.want {
			t.Errorf("%s = %t, want %t", tc.expr, got, tc.want)
		}
	}
}

// TestCIShipsOnEveryTrustedEvent: which runs of ci.yml push the image and deploy it. A run
// train.yml dispatched for a new champion must push it (and, on main, deploy it): before, the
// push step only allowed push events and same-repository PRs, so a new champion was built,
// smoke-tested and dropped.
func TestCIShipsOnEveryTrustedEvent(t *testing.T) {
	w, _ := readWorkflow(t, "ci.yml")
	var pushIf string
	for _, s := range w.Jobs["image"].Steps {
		if s.ID == "push" {
			pushIf = s.If
		}
	}
	if pushIf == "" {
		t.Fatal("the image job's push step has no if: (a fork's PR would try to push)")
	}
	deployIf := w.Jobs["deploy"].If
	const repo = "catdog-mlops/catdog"
	for _, tc := range []struct {
		name             string
		ctx              map[string]string
		wantPush, deploy bool
	}{
		{"push to main", map[string]string{"github.event_name": "push", "github.ref": "refs/heads/main"}, true, true},
		{"release tag", map[string]string{"github.event_name": "push", "github.ref": "refs/tags/v1.2.0"}, true, false},
		{"champion dispatched by train.yml on main", map[string]string{"github.event_name": "workflow_dispatch", "github.ref": "refs/heads/main"}, true, true},
		{"dispatched on a branch", map[string]string{"github.event_name": "workflow_dispatch", "github.ref": "refs/heads/exp"}, true, false},
		{"same-repository PR", map[string]string{"github.event_name": "pull_request", "github.ref": "refs/pull/7/merge",
			"github.event.pull_request.head.repo.full_name": repo}, true, false},
		{"fork PR", map[string]string{"github.event_name": "pull_request", "github.ref": "refs/pull/8/merge",
			"github.event.pull_request.head.repo.full_name": "someone/catdog"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ctx["github.repository"] = repo
			if got := evalIf(t, pushIf, tc.ctx); got != tc.wantPush {
				t.Errorf("push step runs = %t, want %t (if: %s)", got, tc.wantPush, pushIf)
			}
			if got := evalIf(t, deployIf, tc.ctx); got != tc.deploy {
				t.Errorf("deploy runs = %t, want %t (if: %s)", got, tc.deploy, deployIf)
			}
		})
	}
}

// TestTrainDataPullStep runs train.yml's data step (bash, catdog replaced by a stub that
// records its arguments) in a team repository's layout: it pulls the folder params.yaml's
// data.photos names through its .dvc file and hands that file to the train stage
// (CATDOG_DVC_FILE); a data.photos that DVC does not track is an error naming params.yaml.
func TestTrainDataPullStep(t *testing.T) {
	w, _ := readWorkflow(t, "train.yml")
	var script string
	for _, s := range w.Jobs["train"].Steps {
		if strings.Contains(s.Run, "catdog data pull") {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal("train.yml has no data pull step")
	}
	for _, tc := range []struct {
		name, params, dvcFile string
		wantErr               string
	}{
		{"team repository", "epochs: 40\ndata:\n  photos: data/photos   # DVC-tracked\npromote:\n  metric: test_accuracy\n", "data/photos.dvc", ""},
		{"folder not tracked", "data:\n  photos: ../shared/data/petimages-dev\n", "", "::error file=params.yaml::data.photos (../shared/data/petimages-dev) has no ../shared/data/petimages-dev.dvc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustWrite(t, filepath.Join(dir, "params.yaml"), tc.params, 0o644)
			if tc.dvcFile != "" {
				mustWrite(t, filepath.Join(dir, tc.dvcFile), "outs:\n- md5: 0123.dir\n  path: photos\n", 0o644)
			}
			mustWrite(t, filepath.Join(dir, "bin", "catdog"), "#!/bin/sh\necho \"$@\" >> \"$STUB_LOG\"\n", 0o755)
			env := []string{"GITHUB_ENV=" + filepath.Join(dir, "github_env"), "STUB_LOG=" + filepath.Join(dir, "stub.log")}
			out, err := testenv.RunErr(dir, env, "bash", "-e", "-o", "pipefail", "-c", script)
			calls, _ := os.ReadFile(filepath.Join(dir, "stub.log"))
			genv, _ := os.ReadFile(filepath.Join(dir, "github_env"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(out, tc.wantErr) || len(calls) != 0 {
					t.Fatalf("err %v, catdog called with %q, output:\n%s\nwant %q", err, calls, out, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if string(calls) != "data pull "+tc.dvcFile+"\n" {
				t.Errorf("catdog called with %q, want data pull %s", calls, tc.dvcFile)
			}
			if want := "CATDOG_DVC_FILE=" + filepath.Join(dir, tc.dvcFile) + "\n"; string(genv) != want {
				t.Errorf("GITHUB_ENV = %q, want %q", genv, want)
			}
		})
	}
}

func mustWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
