package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/ci/gha"
	"github.com/catdog-mlops/catdog/k8s"
)

// runDeployCompose is `catdog deploy --target compose`: the image digest goes to the compose
// project's .env, then `docker compose up -d --wait` runs where docker is installed.
func runDeployCompose(c *cli.Context, a *gha.Actions, spec k8s.Spec) error {
	if err := spec.WithDefaults().Validate(); err != nil {
		return fail(a, "catdog deploy", err)
	}
	dir := c.String("compose-dir")
	file := filepath.Join(dir, "compose.yaml")
	if _, err := os.Stat(file); err != nil {
		return fail(a, "catdog deploy", fmt.Errorf("compose project: %w", err))
	}
	env := filepath.Join(dir, ".env")
	if err := k8s.SetEnvFile(env, k8s.ComposeImageVar, spec.Image); err != nil {
		return fail(a, "catdog deploy", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "%s: %s=%s\n", env, k8s.ComposeImageVar, spec.Image)
	args := []string{"compose", "--project-directory", dir, "-f", file, "up", "-d", "--wait"}
	docker, err := exec.LookPath("docker")
	if err != nil {
		fmt.Fprintf(c.App.Writer, "docker is not installed here; on the host run:\n  docker %s\n", strings.Join(args, " "))
		return nil
	}
	cmd := exec.CommandContext(c.Context, docker, args...)
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		return fail(a, "catdog deploy", fmt.Errorf("docker %s: %w", strings.Join(args, " "), err))
	}
	return a.SetOutput("image", spec.Image)
}
