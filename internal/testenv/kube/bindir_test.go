package kube

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBinDir: $CATDOG_K8S_BIN wins; otherwise the binaries are looked up below the one cache
// directory (internal/cachedir: $CATDOG_CACHE, else the user cache directory's catdog folder).
func TestBinDir(t *testing.T) {
	root := t.TempDir()
	explicit := filepath.Join(root, "explicit")
	cache := filepath.Join(root, "cache")
	xdg := filepath.Join(root, "xdg")
	for _, d := range []string{explicit, filepath.Join(cache, "k8s-"+Version, "bin"), filepath.Join(xdg, "catdog", "k8s-"+Version, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range binaries {
			if err := os.WriteFile(filepath.Join(d, b), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name, k8sBin, cache, want string
	}{
		{name: "CATDOG_K8S_BIN", k8sBin: explicit, cache: cache, want: explicit},
		{name: "CATDOG_CACHE", cache: cache, want: filepath.Join(cache, "k8s-"+Version, "bin")},
		{name: "user cache directory", want: filepath.Join(xdg, "catdog", "k8s-"+Version, "bin")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CATDOG_K8S_BIN", tt.k8sBin)
			t.Setenv("CATDOG_CACHE", tt.cache)
			t.Setenv("XDG_CACHE_HOME", xdg)
			if got := BinDir(t); got != tt.want {
				t.Errorf("BinDir = %s, want %s", got, tt.want)
			}
		})
	}
}
