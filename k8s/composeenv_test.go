package k8s

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSetEnvFile(t *testing.T) {
	for _, c := range []struct{ name, before, want string }{
		{"missing", "", "CATDOG_IMAGE=" + testImage + "\n"},
		{"keeps the rest", "# comment\nOTHER=1\nCATDOG_IMAGE=old@sha256:00\nLAST=x\n", "# comment\nOTHER=1\nCATDOG_IMAGE=" + testImage + "\nLAST=x\n"},
		{"drops duplicates", "CATDOG_IMAGE=a\nexport CATDOG_IMAGE=b\n", "CATDOG_IMAGE=" + testImage + "\n"},
		{"appends", "OTHER=1", "OTHER=1\nCATDOG_IMAGE=" + testImage + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), ".env")
			if c.before != "" {
				if err := os.WriteFile(p, []byte(c.before), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := SetEnvFile(p, ComposeImageVar, testImage); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), ".env")
	if err := SetEnvFile(p, ComposeImageVar, "x y"); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("a value with a space: %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("a refused value still wrote the file")
	}
}
