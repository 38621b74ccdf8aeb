package imageprep

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps imageprep plain Go: no libtorch (gotch), no cgo, and no project package.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .CgoFiles}}cgo{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"golang.org/x/image/"}
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
			t.Errorf("imageprep depends on %s; it must stay plain Go (allowed: %v)", pkg, allowed)
		}
	}
}
