package imagebuild_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/ci/internal/fixture"
)

func TestLabels(t *testing.T) {
	tests := []struct {
		name    string
		in      imagebuild.LabelInputs
		want    map[string]string
		wantErr error
	}{
		{name: "defaults", want: map[string]string{imagebuild.LabelSource: imagebuild.DefaultSource}},
		{name: "git and model", in: imagebuild.LabelInputs{Source: "https://github.com/o/r", Revision: "abc", Version: "1.2.3", Model: map[string]string{"catdog.model.version": "7"}},
			want: map[string]string{imagebuild.LabelSource: "https://github.com/o/r", imagebuild.LabelRevision: "abc", imagebuild.LabelVersion: "1.2.3", "catdog.model.version": "7"}},
		{name: "extra overrides", in: imagebuild.LabelInputs{Version: "1.2.3", Extra: []string{imagebuild.LabelVersion + "=9", "team=ml", "empty="}},
			want: map[string]string{imagebuild.LabelSource: imagebuild.DefaultSource, imagebuild.LabelVersion: "9", "team": "ml", "empty": ""}},
		{name: "not KEY=VALUE", in: imagebuild.LabelInputs{Extra: []string{"novalue"}}, wantErr: imagebuild.ErrBadLabel},
		{name: "empty key", in: imagebuild.LabelInputs{Extra: []string{"=v"}}, wantErr: imagebuild.ErrBadLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imagebuild.Labels(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Labels = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCheckServes: a real ELF that lists libtorch_cpu.so as needed passes; a binary without
// it, a missing file and no binary are refused.
func TestCheckServes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "main.c")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	torch := filepath.Join(dir, "serves")
	cmd := exec.Command("cc", "-o", torch, src, "-L"+fixture.LibtorchDir(t), "-Wl,--no-as-needed", "-ltorch_cpu", "-Wl,--allow-shlib-undefined")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	tests := []struct {
		name    string
		binary  string
		wantErr error // nil: accepted
		anyErr  bool
	}{
		{name: "links libtorch", binary: torch},
		{name: "no libtorch", binary: fixture.Binary(t), wantErr: imagebuild.ErrCannotServe},
		{name: "missing", binary: filepath.Join(dir, "nope"), wantErr: os.ErrNotExist},
		{name: "not ELF", binary: src, anyErr: true},
		{name: "none given", binary: "", anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := imagebuild.CheckServes(tt.binary)
			switch {
			case tt.anyErr:
				if err == nil {
					t.Fatal("accepted")
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
