package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

const testImage = "registry.test/catdog@sha256:1111111111111111111111111111111111111111111111111111111111111111"

func load(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithWorkingDirectory("."),
		cli.WithEnv(envList), cli.WithName("catdog"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func TestComposeFile(t *testing.T) {
	p, err := load(t, map[string]string{"CATDOG_IMAGE": testImage})
	if err != nil {
		t.Fatalf("compose-go refuses deploy/compose.yaml: %v", err)
	}
	svc, ok := p.Services["catdog"]
	if !ok {
		t.Fatalf("no catdog service: %v", p.ServiceNames())
	}
	if svc.Image != testImage {
		t.Errorf("image %q, want the digest from CATDOG_IMAGE", svc.Image)
	}
	if !svc.ReadOnly || svc.User != "65532:65532" || !slices.Contains(svc.CapDrop, "ALL") {
		t.Errorf("read_only %v, user %q, cap_drop %v", svc.ReadOnly, svc.User, svc.CapDrop)
	}
	if svc.Restart != types.RestartPolicyUnlessStopped {
		t.Errorf("restart %q", svc.Restart)
	}
	hc := svc.HealthCheck
	if hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "/health") || hc.Test[1] != "/usr/local/bin/catdog" {
		t.Errorf("healthcheck %+v", hc)
	}
	if svc.Deploy == nil || svc.Deploy.Resources.Limits == nil || svc.Deploy.Resources.Limits.MemoryBytes == 0 || svc.Deploy.Resources.Limits.NanoCPUs == 0 {
		t.Errorf("resource limits: %+v", svc.Deploy)
	}
	if svc.StopGracePeriod == nil || svc.StopGracePeriod.String() != "40s" {
		t.Errorf("stop_grace_period %v", svc.StopGracePeriod)
	}
	prom, ok := p.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	if dep, ok := prom.DependsOn["catdog"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("prometheus depends_on %+v", prom.DependsOn)
	}
	var mounts []string
	for _, v := range prom.Volumes {
		mounts = append(mounts, v.Target)
		if v.Type == types.VolumeTypeBind {
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("bind mount source %s: %v", v.Source, err)
			}
		}
	}
	if !slices.Contains(mounts, "/etc/prometheus/prometheus.yml") || !slices.Contains(mounts, "/etc/prometheus/rules") {
		t.Errorf("prometheus mounts %v", mounts)
	}
}

func TestComposeNeedsImage(t *testing.T) {
	if _, err := load(t, nil); err == nil || !strings.Contains(err.Error(), "CATDOG_IMAGE") {
		t.Fatalf("loading without CATDOG_IMAGE: %v, want an error naming it", err)
	}
}

func TestComposePrometheusConfig(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool", "install the Debian package: apt-get install prometheus")
	out, err := exec.Command(promtool, "check", "config", filepath.Join("monitoring", "prometheus-compose.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 1 rule files found") {
		t.Errorf("promtool did not load the rules:\n%s", out)
	}
}
