package gha

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

func newTestActions(t *testing.T) (*Actions, *bytes.Buffer, string, string) {
	t.Helper()
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": sum}
	var stdout bytes.Buffer
	return New(&stdout, FromEnv(func(k string) string { return env[k] })), &stdout, out, sum
}

func TestSetOutputIsMultiLineSafe(t *testing.T) {
	a, stdout, outPath, _ := newTestActions(t)
	values := map[string]string{
		"digest":    "sha256:0123",
		"tags":      "ghcr.io/o/r:main\nghcr.io/o/r:sha-0123456",
		"tricky":    "EOF\nname=injected\nghadelimiter_\n",
		"empty":     "",
		"equals":    "a=b=c",
		"unicode":   "chat 🐱 / chien 🐶",
		"crlf-text": "line1\r\nline2",
	}
	for k, v := range values {
		if err := a.SetOutput(k, v); err != nil {
			t.Fatalf("SetOutput(%s): %v", k, err)
		}
	}
	got := testenv.GitHubOutputs(t, outPath)
	if len(got) != len(values) {
		t.Errorf("file has %d outputs, want %d: %v", len(got), len(values), got)
	}
	for k, v := range values {
		want := strings.ReplaceAll(v, "\r\n", "\n") // the runner reads lines, dropping \r
		if got[k] != want {
			t.Errorf("output %s = %q, want %q", k, got[k], want)
		}
	}
	if _, ok := got["name"]; ok {
		t.Error("a value injected an output")
	}
	if stdout.Len() != 0 {
		t.Errorf("outputs leaked to stdout: %q", stdout.String())
	}
	for _, bad := range []string{"", "a\nb", "a=b", " a", "x<<y"} {
		if err := a.SetOutput(bad, "v"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("SetOutput(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	if err := a.SetOutput("big", strings.Repeat("x", MaxOutputBytes+1)); !errors.Is(err, ErrOutputTooLarge) {
		t.Errorf("oversized output: %v", err)
	}
}

func TestWorkflowCommands(t *testing.T) {
	a, stdout, _, _ := newTestActions(t)
	a.Mask("s3cr3t-token")
	a.Mask("line-one\nline-two\n")
	end := a.Group("Build image")
	a.Error("layer too big: 100% of 1,2", Annotation{Title: "size: check", File: "ci/image/build.go", Line: 12, Col: 3})
	a.Warning("multi\nline", Annotation{})
	a.notice("pushed", Annotation{File: "Makefile"})
	end()
	want := strings.Join([]string{
		"::add-mask::s3cr3t-token",
		"::add-mask::line-one",
		"::add-mask::line-two",
		"::group::Build image",
		"::error title=size%3A check,file=ci/image/build.go,line=12,col=3::layer too big: 100%25 of 1,2",
		"::warning::multi%0Aline",
		"::notice file=Makefile::pushed",
		"::endgroup::",
		"",
	}, "\n")
	if stdout.String() != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout.String(), want)
	}
}

func TestAnnotationLimit(t *testing.T) {
	a, stdout, _, _ := newTestActions(t)
	for i := range MaxAnnotations + 3 {
		a.Error(fmt.Sprintf("problem %d", i), Annotation{File: "x.go", Line: i + 1})
	}
	if n := strings.Count(stdout.String(), "::error "); n != MaxAnnotations {
		t.Errorf("%d ::error annotations, want %d", n, MaxAnnotations)
	}
	if a.suppressed["error"] != 3 || !strings.Contains(stdout.String(), "error: x.go:13: problem 12") {
		t.Errorf("suppressed = %d, stdout:\n%s", a.suppressed["error"], stdout.String())
	}
}

func TestSummary(t *testing.T) {
	a, _, _, sumPath := newTestActions(t)
	if err := a.AppendSummary("## Image\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.AppendSummary(Table([]string{"layer", "digest"}, [][]string{{"model", "sha256:ab|cd"}})); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(sumPath)
	want := "## Image\n| layer | digest |\n| --- | --- |\n| model | sha256:ab\\|cd |\n"
	if string(b) != want {
		t.Errorf("summary =\n%q\nwant\n%q", b, want)
	}
	if err := a.AppendSummary(strings.Repeat("x", MaxSummaryBytes)); !errors.Is(err, ErrSummaryTooLarge) {
		t.Errorf("oversized summary: %v", err)
	}
	if b2, _ := os.ReadFile(sumPath); len(b2) != len(b) {
		t.Error("a refused summary was partly written")
	}
}

func TestOutsideActionsPrintsPlainly(t *testing.T) {
	var stdout bytes.Buffer
	a := New(&stdout, FromEnv(func(string) string { return "" }))
	if a.Enabled() {
		t.Fatal("enabled without GITHUB_ACTIONS")
	}
	a.Mask("s3cr3t")
	end := a.Group("Push")
	a.Error("boom", Annotation{File: "a.go", Line: 3})
	end()
	if err := a.SetOutput("digest", "sha256:1"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetOutput("tags", "main\nsha-0123456\n"); err != nil {
		t.Fatal(err)
	}
	if err := a.AppendSummary("# done"); err != nil {
		t.Fatal(err)
	}
	want := "== Push ==\nerror: a.go:3: boom\ndigest: sha256:1\ntags: main, sha-0123456\n# done\n"
	if stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if strings.Contains(stdout.String(), "::") || strings.Contains(stdout.String(), "s3cr3t") {
		t.Error("workflow commands or the secret printed outside Actions")
	}
}
