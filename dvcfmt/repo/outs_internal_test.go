package repo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTrackedBySibling(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name    string
		dvcFile string // content of <name>.dvc; "" for none
		want    bool
	}{
		{"data", "outs:\n- md5: 7a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d.dir\n  size: 3\n  nfiles: 1\n  hash: md5\n  path: data\n", true},
		{"other", "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  hash: md5\n  path: elsewhere\n", false},
		{"broken", "outs: [\n", false},
		{"plain", "", false},
	}
	for _, tc := range tests {
		dir := filepath.Join(root, tc.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if tc.dvcFile != "" {
			if err := os.WriteFile(dir+".dvc", []byte(tc.dvcFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := trackedBySibling(dir); got != tc.want {
			t.Errorf("%s: trackedBySibling = %v, want %v", tc.name, got, tc.want)
		}
	}
}
