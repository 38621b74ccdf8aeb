package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGHATestReportCommand(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "test.log")
	content := "--- FAIL: TestPush (0.1s)\n    publish_test.go:42: registry said 500\nFAIL\nFAIL\tgithub.com/catdog-mlops/catdog/ci/publish\t0.2s\n" +
		"ok  \tgithub.com/catdog-mlops/catdog/ci/tags\t0.1s\n"
	if err := os.WriteFile(log, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(dir, "summary")
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	t.Setenv("GITHUB_OUTPUT", filepath.Join(dir, "output"))
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.RunContext(context.Background(), []string{"catdog", "gha", "test-report", "--module", "github.com/catdog-mlops/catdog", log})
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("test-report of a failing log: err %v (exit %d), want exit 1", err, exitCode(err))
	}
	want := "::error title=TestPush,file=ci/publish/publish_test.go,line=42::registry said 500"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	b, _ := os.ReadFile(summary)
	if !strings.Contains(string(b), "1 packages ok, 1 failed") {
		t.Errorf("summary:\n%s", b)
	}
	if got := moduleFromGoMod(filepath.Join("..", "..", "go.mod")); got != "github.com/catdog-mlops/catdog" {
		t.Errorf("moduleFromGoMod = %q", got)
	}
}
