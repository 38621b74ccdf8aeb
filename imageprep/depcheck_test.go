package imageprep

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps imageprep small: no libtorch (gotch), no cgo of its own, and no project
// package except its internal libjpeg-turbo binding (cgo, linked statically) and the shared
// atomic file write.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .CgoFiles}}cgo{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"golang.org/x/image/", "github.com/catdog-mlops/catdog/imageprep/internal/turbojpeg", "golang.org/x/sync/errgroup",
		"github.com/catdog-mlops/catdog/internal/atomicfile"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, cgo, _ := strings.Cut(line, " ")
		if pkg == "github.com/catdog-mlops/catdog/imageprep" {
			if cgo != "" {
				t.Errorf("imageprep uses cgo")
			}
			continue
		}
		if !strings.Contains(strings.Split(pkg, "/")[0], ".") {
			continue // standard library (runtime/cgo is only linked for net/os/user, not used here)
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(pkg, a)
		}
		if !ok {
			t.Errorf("imageprep depends on %s (allowed: %v)", pkg, allowed)
		}
	}
}
