package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// renderedManifests are the checked-in copies in deploy/k8s and the arguments that produce
// them (`make k8s-manifests` rewrites them).
var renderedManifests = map[string][]string{
	"catdog.yaml":        {"k8s", "render", "--image", "ghcr.io/catdog-mlops/catdog@sha256:0000000000000000000000000000000000000000000000000000000000000000", "--model-name", "catdog"},
	"deployer-rbac.yaml": {"k8s", "render", "--rbac"},
}

// runCatdog runs `catdog <args>` in process and returns what it wrote to stdout and stderr.
func runCatdog(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.RunContext(context.Background(), append([]string{"catdog"}, args...))
	return out.String(), err
}

func TestRenderedManifestsAreCurrent(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "deploy", "k8s")
	for file, args := range renderedManifests {
		got, err := runCatdog(t, args...)
		if err != nil {
			t.Fatalf("catdog %v: %v", args, err)
		}
		if os.Getenv("CATDOG_UPDATE_MANIFESTS") == "1" {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("deploy/k8s/%s differs from `catdog %v`; run `make k8s-manifests`\n--- rendered ---\n%s", file, args, got)
		}
	}
}

func TestRenderRefusesBadSpecs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"k8s", "render", "--image", "ghcr.io/x/catdog:latest"}, "not pinned by digest"},
		{[]string{"k8s", "render"}, "image is required"},
		{[]string{"k8s", "render", "--image", "x@sha256:" + "ab", "--namespace", "Prod"}, "namespace"},
	} {
		out, err := runCatdog(t, c.args...)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("catdog %v: err %v (output %q), want %q", c.args, err, out, c.want)
		}
	}
}

func TestDeployComposeTarget(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir()) // no docker
	img := "registry.test/catdog@sha256:" + strings.Repeat("2", 64)
	out, err := runCatdog(t, "deploy", "--target", "compose", "--compose-dir", dir, "--image", img)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "docker compose --project-directory "+dir) || !strings.Contains(out, "up -d --wait") {
		t.Errorf("without docker it must say what to run:\n%s", out)
	}
	env, _ := os.ReadFile(filepath.Join(dir, ".env"))
	if string(env) != "CATDOG_IMAGE="+img+"\n" {
		t.Errorf(".env: %q", env)
	}
	if _, err := runCatdog(t, "deploy", "--target", "compose", "--compose-dir", dir, "--image", "registry.test/catdog:latest"); err == nil ||
		!strings.Contains(err.Error(), "not pinned by digest") {
		t.Errorf("a tag: %v", err)
	}
}
