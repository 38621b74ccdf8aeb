//go:build !catdog_light

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestShippedPipeline runs the repository's own dvc.yaml, unchanged, with the real catdog
// commands (catdog repro, a small photo set, params.yaml shrunk to seconds of training) and
// checks it with the real dvc: up to date afterwards, `dvc repro` runs nothing, one params
// change makes exactly the stages reading it stale and catdog re-runs only what follows,
// and dvc's metrics and plots commands read the stage outputs.
func TestShippedPipeline(t *testing.T) {
	root := testenv.RepoRoot(t)
	shared := testenv.SharedData(t)
	dvc := testenv.NewDVC(t)
	bin := t.TempDir()
	testenv.Run(t, root, nil, "go", "build", "-o", filepath.Join(bin, "catdog"), "./cmd/catdog")
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "MLFLOW_TRACKING_URI="}
	dvc.Env = append(dvc.Env, env...)

	work := t.TempDir()
	testenv.GitInit(t, work)
	dvc.Run(t, work, "init", "-q")
	write := func(name string, b []byte) {
		t.Helper()
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) []byte {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write("dvc.yaml", read(filepath.Join(root, "dvc.yaml")))
	params := string(read(filepath.Join(root, "params.yaml")))
	for _, re := range []struct{ pat, repl string }{{`(?m)^epochs: \d+`, "epochs: 1"}, {`(?m)^input_size: \d+`, "input_size: 32"}} {
		if !regexp.MustCompile(re.pat).MatchString(params) {
			t.Fatalf("params.yaml has no line matching %q", re.pat)
		}
		params = regexp.MustCompile(re.pat).ReplaceAllString(params, re.repl)
	}
	for old, repl := range map[string]string{
		"widths: [32, 64, 128, 256]":           "widths: [8, 16, 32]",
		"photos: ../shared/data/petimages-dev": "photos: photos", "\ntta: true": "\ntta: false",
	} {
		if !strings.Contains(params, old) {
			t.Fatalf("params.yaml has no %q", old)
		}
		params = strings.Replace(params, old, repl, 1)
	}
	write("params.yaml", []byte(params))
	for _, class := range []string{"Cat", "Dog"} {
		for i := range 20 {
			name := fmt.Sprintf("%s.%d.jpg", strings.ToLower(class), i)
			write(filepath.Join("photos", class, name), read(filepath.Join(shared, "petimages-dev", class, name)))
		}
	}
	for _, code := range []string{"imageprep/x.go", "train/x.go", "model/x.go", "cmd/catdog/prepare.go", "cmd/catdog/train.go", "cmd/catdog/evaluate.go"} {
		write(code, []byte("package x\n"))
	}
	catdog := func(args ...string) string {
		t.Helper()
		return testenv.Run(t, work, env, filepath.Join(bin, "catdog"), args...)
	}
	stale := func() []string {
		t.Helper()
		out := dvc.Run(t, work, "status")
		if strings.Contains(out, "Data and pipelines are up to date.") {
			return nil
		}
		var st []string
		for _, m := range regexp.MustCompile(`(?m)^([a-z]+):$`).FindAllStringSubmatch(out, -1) {
			st = append(st, m[1])
		}
		sort.Strings(st)
		return st
	}

	out := catdog("repro")
	for _, s := range []string{"Running stage 'prepare'", "Running stage 'train'", "Running stage 'evaluate'", "ran 3 stage(s)"} {
		if !strings.Contains(out, s) {
			t.Fatalf("catdog repro: no %q in\n%s", s, out)
		}
	}
	if st := stale(); st != nil {
		t.Fatalf("dvc status after catdog repro: stale %v", st)
	}
	lock := read(filepath.Join(work, "dvc.lock"))
	if out := dvc.Run(t, work, "repro"); strings.Contains(out, "Running stage") {
		t.Fatalf("dvc repro re-ran stages:\n%s", out)
	}
	if string(read(filepath.Join(work, "dvc.lock"))) != string(lock) {
		t.Errorf("dvc repro rewrote dvc.lock")
	}
	if out := catdog("repro"); !strings.Contains(out, "Data and pipelines are up to date.") {
		t.Errorf("second catdog repro:\n%s", out)
	}

	// epochs is read only by train; its new model makes evaluate follow
	write("params.yaml", []byte(strings.Replace(params, "\nepochs: 1", "\nepochs: 2", 1)))
	if st := stale(); len(st) != 1 || st[0] != "train" {
		t.Fatalf("dvc status after changing epochs: %v", st)
	}
	if out := catdog("repro", "--dry"); !strings.Contains(out, "1 stage(s) would run: train") || !strings.Contains(out, "epochs") {
		t.Errorf("catdog repro --dry:\n%s", out)
	}
	out = catdog("repro")
	if strings.Contains(out, "Running stage 'prepare'") || !strings.Contains(out, "Running stage 'train'") || !strings.Contains(out, "Running stage 'evaluate'") {
		t.Errorf("catdog repro after changing epochs:\n%s", out)
	}
	if st := stale(); st != nil {
		t.Fatalf("dvc status: stale %v", st)
	}
	if out := dvc.Run(t, work, "metrics", "show"); !strings.Contains(out, "metrics/evaluation.json") || !strings.Contains(out, "cat.f1") {
		t.Errorf("dvc metrics show:\n%s", out)
	}
	dvc.Run(t, work, "plots", "show", "-o", "plots-html")
	html := string(read(filepath.Join(work, "plots-html", "index.html")))
	if !strings.Contains(html, "val_loss") || !strings.Contains(html, "confusion_matrix.png") {
		t.Errorf("dvc plots show: the curves or the confusion matrix are missing from index.html")
	}
}
