package repo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/pipeline"
	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

const testParams = `seed: 42
lr: 0.002
tta: true
name: catdog
arch:
  widths: [32, 64]
  dropout: 0.3
aug:
  scale: [0.5, 1.0]
  ratio: [0.75, 1.3333333]
eval:
  threshold: 0.5
  note: 'a: b'
`

// The stages are tiny shell scripts; the long cmd checks dvc.lock's line folding.
const testPipeline = `stages:
  prepare:
    cmd: sh src/prepare.sh ${seed} --with-a-long-list-of-arguments so that the command line is longer than eighty columns
    deps:
    - data/raw
    - src/prepare.sh
    params:
    - seed
    outs:
    - out/prep
  train:
    cmd: sh src/train.sh ${lr}
    deps:
    - out/prep
    - src/train.sh
    params:
    - lr
    - arch
    - aug.scale
    - tta
    outs:
    - out/model
    metrics:
    - out/train_metrics.json:
        cache: false
    plots:
    - out/curve.csv:
        cache: false
  evaluate:
    cmd:
    - sh src/evaluate.sh
    - echo evaluated
    deps:
    - out/model
    - src/evaluate.sh
    params:
    - eval
    metrics:
    - out/eval.json:
        cache: false
plots:
- out/curve.csv:
    x: epoch
    y: loss
`

var testScripts = map[string]string{
	"src/prepare.sh":  "mkdir -p out/prep/sub && cp data/raw/* out/prep/ && echo \"$1\" > out/prep/sub/seed\n",
	"src/train.sh":    "mkdir -p out/model && cat out/prep/a.txt > out/model/weights && echo \"$1\" >> out/model/weights\nprintf '{\"acc\": 0.75, \"loss\": 0.5}\\n' > out/train_metrics.json\nprintf 'epoch,loss\\n1,0.9\\n2,0.5\\n' > out/curve.csv\n",
	"src/evaluate.sh": "thr=$(grep threshold params.yaml | awk '{print $2}')\nprintf '{\"accuracy\": 0.8, \"threshold\": %s}\\n' \"$thr\" > out/eval.json\n",
}

// newPipelineRepo makes a git + dvc repository holding the test pipeline.
func newPipelineRepo(t *testing.T, dvc *testenv.DVC, pipelineText string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.GitInit(t, dir)
	dvc.Run(t, dir, "init", "-q")
	files := map[string]string{"params.yaml": testParams, "dvc.yaml": pipelineText, "data/raw/a.txt": "alpha\n", "data/raw/b.txt": "beta\n"}
	for k, v := range testScripts {
		files[k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func repro(t *testing.T, dir string) *repo.ReproResult {
	t.Helper()
	res, err := mustOpen(t, dir).Repro(context.Background(), repo.ReproOptions{})
	if err != nil {
		t.Fatalf("catdog repro: %v", err)
	}
	return res
}

var dvcRanRE = regexp.MustCompile(`Running stage '([^']+)'`)

// dvcRepro runs the real `dvc repro` and returns the stages it ran.
func dvcRepro(t *testing.T, dvc *testenv.DVC, dir string) []string {
	t.Helper()
	out := dvc.Run(t, dir, "repro")
	var ran []string
	for _, m := range dvcRanRE.FindAllStringSubmatch(out, -1) {
		ran = append(ran, m[1])
	}
	return ran
}

var statusStageRE = regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+):$`)

// dvcStale returns the stages `dvc status` lists as changed.
func dvcStale(t *testing.T, dvc *testenv.DVC, dir string) []string {
	t.Helper()
	out := dvc.Run(t, dir, "status")
	if strings.Contains(out, "Data and pipelines are up to date.") {
		return nil
	}
	var st []string
	for _, m := range statusStageRE.FindAllStringSubmatch(out, -1) {
		st = append(st, m[1])
	}
	sort.Strings(st)
	return st
}

func setParam(t *testing.T, dir, old, repl string) {
	t.Helper()
	p := filepath.Join(dir, "params.yaml")
	b := mustRead(t, p)
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("params.yaml has no %q", old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(repl), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReproMatchesDVC runs the same pipeline with the real `dvc repro` in one repository and
// with catdog's Repro in another: dvc.lock, .gitignore and cache are byte-identical; dvc then
// finds catdog's repository up to date and re-runs nothing; after a params change dvc status
// names exactly the stages reading it and both tools re-run exactly those.
func TestReproMatchesDVC(t *testing.T) {
	dvc := testenv.NewDVC(t)
	ref := newPipelineRepo(t, dvc, testPipeline)
	got := newPipelineRepo(t, dvc, testPipeline)

	if ran := dvcRepro(t, dvc, ref); !reflect.DeepEqual(ran, []string{"prepare", "train", "evaluate"}) {
		t.Fatalf("dvc repro ran %v", ran)
	}
	if res := repro(t, got); !reflect.DeepEqual(res.Ran, []string{"prepare", "train", "evaluate"}) {
		t.Fatalf("catdog repro ran %v", res.Ran)
	}
	sameLock := func() {
		t.Helper()
		want, have := mustRead(t, filepath.Join(ref, "dvc.lock")), mustRead(t, filepath.Join(got, "dvc.lock"))
		if !bytes.Equal(want, have) {
			t.Fatalf("dvc.lock differs\n--- catdog\n%s--- dvc\n%s", have, want)
		}
	}
	sameLock()
	if !regexp.MustCompile(`(?m)^    cmd: sh src/prepare.sh 42 .*\n      [a-z]`).Match(mustRead(t, filepath.Join(got, "dvc.lock"))) {
		t.Errorf("the long command was not folded as ruamel folds it")
	}
	if a, b := mustRead(t, filepath.Join(ref, "out/.gitignore")), mustRead(t, filepath.Join(got, "out/.gitignore")); !bytes.Equal(a, b) {
		t.Errorf("out/.gitignore: catdog %q, dvc %q", b, a)
	}
	if a, b := cacheObjects(t, ref), cacheObjects(t, got); !reflect.DeepEqual(a, b) || len(a) == 0 {
		for k, v := range a {
			if _, ok := b[k]; !ok {
				t.Logf("only dvc has %s (%q)", k, v)
			}
		}
		t.Errorf("caches differ: catdog %d objects, dvc %d", len(b), len(a))
	}
	if st := dvcStale(t, dvc, got); st != nil {
		t.Fatalf("dvc status after catdog repro: stale %v", st)
	}
	if ran := dvcRepro(t, dvc, got); len(ran) != 0 {
		t.Fatalf("dvc repro after catdog repro ran %v", ran)
	}
	sameLock()
	if res := repro(t, got); len(res.Ran) != 0 { // and catdog agrees with itself
		t.Fatalf("second catdog repro ran %v", res.Ran)
	}
	if st, err := mustOpen(t, got).PipelineStatus(context.Background()); err != nil || len(st) != 0 {
		t.Fatalf("PipelineStatus = %v, %v", st, err)
	}

	// one param read only by evaluate
	for _, d := range []string{ref, got} {
		setParam(t, d, "threshold: 0.5", "threshold: 0.7")
	}
	if st := dvcStale(t, dvc, got); !reflect.DeepEqual(st, []string{"evaluate"}) {
		t.Fatalf("dvc status after changing eval.threshold: %v", st)
	}
	st, err := mustOpen(t, got).PipelineStatus(context.Background())
	if err != nil || len(st) != 1 || st[0].Stage != "evaluate" || st[0].Changes[0].Param != "eval" {
		t.Fatalf("PipelineStatus = %+v, %v", st, err)
	}
	if ran := dvcRepro(t, dvc, ref); !reflect.DeepEqual(ran, []string{"evaluate"}) {
		t.Fatalf("dvc repro ran %v", ran)
	}
	if res := repro(t, got); !reflect.DeepEqual(res.Ran, []string{"evaluate"}) {
		t.Fatalf("catdog repro ran %v", res.Ran)
	}
	sameLock()

	// a param of train: train re-runs, its model changes, so evaluate follows
	for _, d := range []string{ref, got} {
		setParam(t, d, "lr: 0.002", "lr: 0.001")
	}
	if st := dvcStale(t, dvc, got); !reflect.DeepEqual(st, []string{"train"}) {
		t.Fatalf("dvc status after changing lr: %v", st)
	}
	if ran := dvcRepro(t, dvc, ref); !reflect.DeepEqual(ran, []string{"train", "evaluate"}) {
		t.Fatalf("dvc repro ran %v", ran)
	}
	if res := repro(t, got); !reflect.DeepEqual(res.Ran, []string{"train", "evaluate"}) {
		t.Fatalf("catdog repro ran %v", res.Ran)
	}
	sameLock()
	if st := dvcStale(t, dvc, got); st != nil {
		t.Fatalf("dvc status: stale %v", st)
	}

	// dvc's metrics, params and plots commands read what catdog wrote
	if out := dvc.Run(t, got, "metrics", "show"); !strings.Contains(out, "0.75") || !strings.Contains(out, "0.7") || !strings.Contains(out, "out/eval.json") {
		t.Errorf("dvc metrics show:\n%s", out)
	}
	git(t, got, "add", "-A")
	git(t, got, "commit", "-q", "-m", "pipeline")
	setParam(t, got, "dropout: 0.3", "dropout: 0.25")
	if out := dvc.Run(t, got, "params", "diff"); !strings.Contains(out, "arch.dropout") || !strings.Contains(out, "0.3") || !strings.Contains(out, "0.25") {
		t.Errorf("dvc params diff:\n%s", out)
	}
	if st := dvcStale(t, dvc, got); !reflect.DeepEqual(st, []string{"train"}) {
		t.Errorf("dvc status after changing arch.dropout: %v", st)
	}
	if out := dvc.Run(t, got, "plots", "show", "--json"); !strings.Contains(out, "out/curve.csv") {
		t.Errorf("dvc plots show --json:\n%s", out)
	}
	dvc.Run(t, got, "plots", "show", "-o", "plots-html")
	if html, err := os.ReadFile(filepath.Join(got, "plots-html", "index.html")); err != nil || !bytes.Contains(html, []byte("0.9")) {
		t.Errorf("dvc plots show wrote no rendering of out/curve.csv: %v", err)
	}
}

// TestReproErrors: every bad pipeline fails with an error naming the stage, and dvc.lock
// keeps the entries of the last good run.
func TestReproErrors(t *testing.T) {
	dvc := testenv.NewDVC(t)
	tests := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		stage string
		match func(error) bool
		text  string
	}{
		{"failing command", func(t *testing.T, dir string) {
			setParam(t, dir, "lr: 0.002", "lr: 0.003")
			appendFile(t, filepath.Join(dir, "src/train.sh"), "exit 3\n")
		}, "train", nil, "exit status 3"},
		{"missing dependency", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "src/evaluate.sh")); err != nil {
				t.Fatal(err)
			}
		}, "evaluate", func(err error) bool { var m *repo.MissingDepError; return errors.As(err, &m) }, "src/evaluate.sh does not exist"},
		{"unknown param", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "dvc.yaml"), "    - aug.scale\n", "    - aug.nope\n")
		}, "train", func(err error) bool { return errors.Is(err, pipeline.ErrMissingParam) }, "aug.nope"},
		{"cycle", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "dvc.yaml"), "    - src/prepare.sh\n", "    - src/prepare.sh\n    - out/eval.json\n")
		}, "prepare", func(err error) bool { return errors.Is(err, pipeline.ErrCycle) }, "prepare -> "},
		{"missing output", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "dvc.yaml"), "    - out/eval.json:\n", "    - out/never-written.json:\n        cache: false\n    - out/eval.json:\n")
		}, "evaluate", nil, "out/never-written.json does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newPipelineRepo(t, dvc, testPipeline)
			repro(t, dir)
			before := mustRead(t, filepath.Join(dir, "dvc.lock"))
			tc.edit(t, dir)
			_, err := mustOpen(t, dir).Repro(context.Background(), repo.ReproOptions{})
			var se *pipeline.StageError
			if err == nil || !errors.As(err, &se) || se.Stage != tc.stage {
				t.Fatalf("Repro err = %v, want a StageError for %q", err, tc.stage)
			}
			if !strings.Contains(err.Error(), tc.stage) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not name the stage %q and %q", err, tc.stage, tc.text)
			}
			if tc.match != nil && !tc.match(err) {
				t.Errorf("error %v does not match its type", err)
			}
			after := mustRead(t, filepath.Join(dir, "dvc.lock"))
			if !bytes.Equal(before, after) {
				t.Errorf("dvc.lock changed after a failed repro:\n%s", after)
			}
			if _, err := pipeline.ParseLock(after); err != nil {
				t.Errorf("dvc.lock unreadable after a failed repro: %v", err)
			}
		})
	}
}

// cacheObjects is the files/md5 part of a cache (dvc's run-cache under runs/ is left out:
// catdog does not keep one, and dvc does not need it to see a stage as up to date).
func cacheObjects(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := cacheFiles(t, dir)
	for k := range m {
		if !strings.HasPrefix(k, "files/") {
			delete(m, k)
		}
	}
	return m
}

func editFile(t *testing.T, path, old, repl string) {
	t.Helper()
	b := mustRead(t, path)
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(repl), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}
