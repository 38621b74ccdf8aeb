package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestImageEndToEnd is the smoke path of the CI and CD workflows on a freshly trained tiny
// model: build the catdog binary, prepare + train, `catdog image build` (OCI layout), `catdog
// image push` to a real distribution registry (checked with skopeo), then `catdog image run`
// pulling by digest: the image's `catdog serve` starts under chroot and answers /health,
// /ready and /predict. GitHub Actions outputs go to temp files.
func TestImageEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the image smoke test starts a chroot and must run as root (make test runs as root here)")
	}
	root := testenv.RepoRoot(t)
	shared := testenv.SharedData(t)
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	defer step("done")
	work := t.TempDir()
	bin := filepath.Join(work, "catdog")
	testenv.Run(t, root, nil, "go", "build", "-o", bin, "./cmd/catdog")

	step("built catdog")
	// A tiny training set: 30 cats and 30 dogs.
	sub := filepath.Join(work, "photos")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		for _, c := range []string{"cat", "dog"} {
			name := fmt.Sprintf("%s.%d.jpg", c, i)
			src := filepath.Join(shared, "petimages-dev", strings.ToUpper(c[:1])+c[1:], name)
			if err := os.Symlink(src, filepath.Join(sub, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.Run(t, work, nil, bin, "prepare", "--data", sub, "--out", "prepared", "--size", "64", "-q")
	testenv.Run(t, work, nil, bin, "train", "--params", filepath.Join(root, "params.yaml"), "--data", "prepared",
		"--out", "model", "--epochs", "1", "--input-size", "64", "--batch-size", "16", "-q")

	step("prepared and trained")
	outFile, sumFile := filepath.Join(work, "output"), filepath.Join(work, "summary")
	env := []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + sumFile,
		"GITHUB_REF=refs/tags/v1.4.0", "GITHUB_SHA=d6cd1e2bd19e03a81132a23b2025920577f84e37",
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=catdog-mlops/catdog",
		"GITHUB_TOKEN=ghp_do-not-print-me", "SOURCE_DATE_EPOCH=1700000000",
	}
	cache := filepath.Join(work, "layers")
	out := testenv.Run(t, work, env, bin, "image", "build", "--binary", bin, "--model", "model",
		"--cache-dir", cache, "--oci-layout", "layout", "-q")
	if !strings.Contains(out, "::add-mask::ghp_do-not-print-me") || strings.Count(out, "ghp_do-not-print-me") != 1 {
		t.Errorf("the token must be masked once and never printed otherwise:\n%s", out)
	}
	if !strings.Contains(out, "::group::Build image") {
		t.Errorf("no ::group:: in the build output:\n%s", out)
	}
	outputs := testenv.GitHubOutputs(t, outFile)
	if outputs["tags"] != "1.4.0\n1.4\nsha-d6cd1e2\nlatest" || !strings.HasPrefix(outputs["digest"], "sha256:") || outputs["version"] != "1.4.0" {
		t.Fatalf("build outputs = %v", outputs)
	}
	digest := outputs["digest"]
	step("image build")
	// Same inputs, same SOURCE_DATE_EPOCH: the same digest (from the layer cache this time).
	again := testenv.Run(t, work, env, bin, "image", "build", "--binary", bin, "--model", "model", "--cache-dir", cache, "-q")
	if !strings.Contains(again, digest) {
		t.Errorf("rebuild did not reproduce %s:\n%s", digest, again)
	}

	step("rebuild")
	reg := testenv.StartRegistry(t)
	repo := reg.Host + "/catdog-mlops/catdog"
	if err := os.Remove(outFile); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, work, env, bin, "image", "push", "--oci-layout", "layout", "--repo", repo, "-q")
	outputs = testenv.GitHubOutputs(t, outFile)
	if outputs["digest"] != digest || outputs["image"] != repo+"@"+digest {
		t.Fatalf("push outputs = %v, want digest %s", outputs, digest)
	}
	step("push")
	skopeo := testenv.LookPath(t, "skopeo", "apt-get install skopeo")
	var ins struct {
		Digest string
		Labels map[string]string
	}
	raw := testenv.Run(t, work, nil, skopeo, "inspect", "--tls-verify=false", "docker://"+repo+":1.4")
	if err := json.Unmarshal([]byte(raw), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Digest != digest || ins.Labels["org.opencontainers.image.version"] != "1.4.0" ||
		ins.Labels["org.opencontainers.image.source"] != "https://github.com/catdog-mlops/catdog" ||
		ins.Labels["org.opencontainers.image.created"] != "2023-11-14T22:13:20Z" {
		t.Errorf("skopeo inspect: %+v", ins)
	}

	step("skopeo")
	// CD: pull by digest, run under chroot, smoke-test.
	sample := filepath.Join(shared, "petimages-dev", "Dog", "dog.100.jpg")
	out = testenv.Run(t, work, env, bin, "image", "run", "--image", outputs["image"], "--sample", sample, "--timeout", "2m")
	if !strings.Contains(out, "smoke test passed") {
		t.Fatalf("image run:\n%s", out)
	}
	step("image run")
	label := testenv.GitHubOutputs(t, outFile)["label"]
	if label != "cat" && label != "dog" {
		t.Errorf("smoke label output = %q", label)
	}
	summary, _ := os.ReadFile(sumFile)
	for _, want := range []string{"### catdog image", "| model |", "### catdog image push", "### catdog smoke test"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("step summary lacks %q:\n%s", want, summary)
		}
	}
	// A failure is an ::error annotation and a non-zero exit (a server that does not come up is
	// covered in ci/imagerun).
	out, err := testenv.RunErr(work, env, bin, "image", "run", "--oci-layout", filepath.Join(work, "no-such-layout"))
	if err == nil || !strings.Contains(out, "::error title=image run::") {
		t.Errorf("image run of a missing layout: err %v\n%s", err, out)
	}
}
