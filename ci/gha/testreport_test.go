package gha

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goTestLog = `ok  	github.com/catdog-mlops/catdog/ci/gha	0.434s
--- FAIL: TestLayoutAndTarball (2.16s)
    publish_test.go:412: skopeo inspect docker-archive does not list the model layer:
        {
            "Digest": "sha256:45ee"
        }
FAIL
FAIL	github.com/catdog-mlops/catdog/ci/publish	10.956s
--- FAIL: TestExtractRejectsEscapes (0.02s)
    --- FAIL: TestExtractRejectsEscapes/dot-dot (0.00s)
        imagerun_test.go:172: Extract = <nil>, want ErrUnsafePath
    --- FAIL: TestExtractRejectsEscapes/hard_link_out (0.00s)
        imagerun_test.go:172: Extract = <nil>, want ErrUnsafePath
FAIL
FAIL	github.com/catdog-mlops/catdog/ci/imagerun	7.756s
# github.com/catdog-mlops/catdog/ci/image_test [github.com/catdog-mlops/catdog/ci/image.test]
ci/image/build_test.go:116:16: invalid argument: c.ExposedPorts["8080/tcp"] for built-in len
FAIL	github.com/catdog-mlops/catdog/ci/image [build failed]
?   	github.com/catdog-mlops/catdog/ci/internal/fixture	[no test files]
ok  	github.com/catdog-mlops/catdog/ci/tags	0.008s
FAIL
`

func TestParseGoTest(t *testing.T) {
	rep, err := ParseGoTest(strings.NewReader(goTestLog), "github.com/catdog-mlops/catdog")
	if err != nil {
		t.Fatal(err)
	}
	want := []TestFailure{
		{"github.com/catdog-mlops/catdog/ci/publish", "TestLayoutAndTarball", "ci/publish/publish_test.go", 412,
			"skopeo inspect docker-archive does not list the model layer:"},
		{"github.com/catdog-mlops/catdog/ci/imagerun", "TestExtractRejectsEscapes/dot-dot", "ci/imagerun/imagerun_test.go", 172,
			"Extract = <nil>, want ErrUnsafePath"},
		{"github.com/catdog-mlops/catdog/ci/imagerun", "TestExtractRejectsEscapes/hard_link_out", "ci/imagerun/imagerun_test.go", 172,
			"Extract = <nil>, want ErrUnsafePath"},
		{"github.com/catdog-mlops/catdog/ci/image_test", "", "ci/image/build_test.go", 116,
			`invalid argument: c.ExposedPorts["8080/tcp"] for built-in len`},
	}
	if len(rep.Failures) != len(want) {
		t.Fatalf("%d failures, want %d: %+v", len(rep.Failures), len(want), rep.Failures)
	}
	for i, w := range want {
		if rep.Failures[i] != w {
			t.Errorf("failure %d = %+v\nwant %+v", i, rep.Failures[i], w)
		}
	}
	wantPkgs := map[string]string{
		"github.com/catdog-mlops/catdog/ci/gha":              "ok",
		"github.com/catdog-mlops/catdog/ci/publish":          "FAIL",
		"github.com/catdog-mlops/catdog/ci/imagerun":         "FAIL",
		"github.com/catdog-mlops/catdog/ci/image":            "FAIL",
		"github.com/catdog-mlops/catdog/ci/internal/fixture": "no test files",
		"github.com/catdog-mlops/catdog/ci/tags":             "ok",
	}
	for p, s := range wantPkgs {
		if rep.Packages[p] != s {
			t.Errorf("package %s = %q, want %q", p, rep.Packages[p], s)
		}
	}
	if !rep.Failed() {
		t.Error("Failed() = false")
	}
	clean, _ := ParseGoTest(strings.NewReader("ok  \tgithub.com/catdog-mlops/catdog/ci/tags\t0.1s\n"), "github.com/catdog-mlops/catdog")
	if clean.Failed() || len(clean.Failures) != 0 {
		t.Errorf("a passing log reported failures: %+v", clean)
	}
}

func TestReportTests(t *testing.T) {
	dir := t.TempDir()
	sum := filepath.Join(dir, "summary")
	var stdout bytes.Buffer
	a := New(&stdout, Env{Enabled: true, SummaryPath: sum, OutputPath: filepath.Join(dir, "out")})
	rep, err := ParseGoTest(strings.NewReader(goTestLog), "github.com/catdog-mlops/catdog")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ReportTests(rep); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{
		"::error title=TestLayoutAndTarball,file=ci/publish/publish_test.go,line=412::skopeo inspect docker-archive does not list the model layer:",
		"::error title=build github.com/catdog-mlops/catdog/ci/image_test,file=ci/image/build_test.go,line=116::invalid argument",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	b, _ := os.ReadFile(sum)
	if !strings.Contains(string(b), "2 packages ok, 3 failed, 1 without tests; 4 failures.") ||
		!strings.Contains(string(b), "| github.com/catdog-mlops/catdog/ci/publish | FAIL |") {
		t.Errorf("summary:\n%s", b)
	}
}
