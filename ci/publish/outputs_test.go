package publish_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/catdog-mlops/catdog/ci/publish"
)

// TestWriteOutputs: the layout tag defaults to the first image tag, the tarball names
// REPO:TAG for every tag (repository "catdog" by default), and nothing is written unasked.
func TestWriteOutputs(t *testing.T) {
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	tests := []struct {
		name          string
		layout, tar   bool
		layoutTag     string
		repo          string
		wantLayoutTag string
		wantRefs      []string
	}{
		{name: "nothing asked"},
		{name: "layout, default tag", layout: true, wantLayoutTag: "main"},
		{name: "layout, given tag", layout: true, layoutTag: "candidate", wantLayoutTag: "candidate"},
		{name: "tarball, default repo", tar: true, wantRefs: []string{"catdog:main", "catdog:sha-abc1234"}},
		{name: "both", layout: true, tar: true, repo: "ghcr.io/o/catdog", wantLayoutTag: "main",
			wantRefs: []string{"ghcr.io/o/catdog:main", "ghcr.io/o/catdog:sha-abc1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := publish.Outputs{LayoutTag: tt.layoutTag, Repo: tt.repo, Tags: []string{"main", "sha-abc1234"}}
			if tt.layout {
				o.Layout = filepath.Join(dir, "layout")
			}
			if tt.tar {
				o.Tarball = filepath.Join(dir, "image.tar")
			}
			got, err := publish.WriteOutputs(img, o)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantLayoutTag {
				t.Errorf("layout tag %q, want %q", got, tt.wantLayoutTag)
			}
			if tt.layout {
				li, err := publish.ReadLayout(o.Layout, tt.wantLayoutTag)
				if err != nil {
					t.Fatal(err)
				}
				if d, _ := li.Digest(); d != want {
					t.Errorf("layout image %s, want %s", d, want)
				}
			}
			for _, ref := range tt.wantRefs {
				tag, err := name.NewTag(ref)
				if err != nil {
					t.Fatal(err)
				}
				ti, err := tarball.ImageFromPath(o.Tarball, &tag)
				if err != nil {
					t.Fatalf("tarball lacks %s: %v", ref, err)
				}
				sameImage(t, ti, img)
			}
			if ents, _ := os.ReadDir(dir); !tt.layout && !tt.tar && len(ents) != 0 {
				t.Errorf("wrote %d files though none was asked for", len(ents))
			}
		})
	}
	if _, err := publish.WriteOutputs(img, publish.Outputs{Layout: t.TempDir()}); err == nil {
		t.Error("WriteOutputs without tags succeeded")
	}
}

// sameImage compares config digests: a docker tarball re-encodes the manifest, not the config.
func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	g, err := got.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := want.ConfigName(); g != w {
		t.Errorf("config %s, want %s", g, w)
	}
}
