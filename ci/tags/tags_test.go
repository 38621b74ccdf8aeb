package tags

import (
	"errors"
	"slices"
	"testing"
)

func TestCompute(t *testing.T) {
	const sha = "860c1904a1ce19322e91ac35af1ab07466440c37"
	tests := []struct {
		name string
		ctx  Context
		want []string
	}{
		{"main branch", Context{"refs/heads/main", sha}, []string{"main", "sha-860c190"}},
		{"branch with slash", Context{"refs/heads/my/branch", sha}, []string{"my-branch", "sha-860c190"}},
		{"branch with odd characters", Context{"refs/heads/feat/Über cool#1", sha}, []string{"feat-ber-cool-1", "sha-860c190"}},
		{"semver tag", Context{"refs/tags/v1.2.3", sha}, []string{"1.2.3", "1.2", "sha-860c190", "latest"}},
		{"semver tag without v", Context{"refs/tags/2.0.0", sha}, []string{"2.0.0", "2.0", "sha-860c190", "latest"}},
		{"major zero", Context{"refs/tags/v0.3.1", sha}, []string{"0.3.1", "0.3", "sha-860c190", "latest"}},
		{"build metadata dropped", Context{"refs/tags/v1.2.3+build.7", sha}, []string{"1.2.3", "1.2", "sha-860c190", "latest"}},
		{"pre-release", Context{"refs/tags/v1.2.3-rc.1", sha}, []string{"1.2.3-rc.1", "sha-860c190"}},
		{"non-semver tag", Context{"refs/tags/release-candidate", sha}, []string{"sha-860c190"}},
		{"not quite semver", Context{"refs/tags/v1.2", sha}, []string{"sha-860c190"}},
		{"leading zero is not semver", Context{"refs/tags/v01.2.3", sha}, []string{"sha-860c190"}},
		{"pull request", Context{"refs/pull/42/merge", sha}, []string{"pr-42", "sha-860c190"}},
		{"no sha", Context{"refs/heads/dev", ""}, []string{"dev"}},
		{"uppercase sha", Context{"refs/heads/dev", "ABCDEF0123"}, []string{"dev", "sha-abcdef0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compute(tt.ctx)
			if err != nil {
				t.Fatalf("Compute(%+v): %v", tt.ctx, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compute(%+v) = %q, wanted %q", tt.ctx, got, tt.want)
			}
			if v := Version(tt.ctx); v != tt.want[0] {
				t.Errorf("Version(%+v) = %q, wanted %q", tt.ctx, v, tt.want[0])
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	if _, err := Compute(Context{Ref: "refs/remotes/x"}); !errors.Is(err, ErrNoTags) {
		t.Errorf("unknown ref without sha: %v, want ErrNoTags", err)
	}
	if _, err := Compute(Context{Ref: "refs/heads/main", SHA: "not-a-sha"}); err == nil {
		t.Error("a bad SHA was accepted")
	}
}

func TestSanitizeOutputIsAValidTag(t *testing.T) {
	for _, in := range []string{"a/b", "a b", "ä", "x:y@z", "ok.1_2-3"} {
		got := sanitize(in)
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Errorf("sanitize(%q) = %q has %q", in, got, r)
			}
		}
	}
	if got := sanitize("my/branch"); got != "my-branch" {
		t.Errorf("sanitize(my/branch) = %q", got)
	}
}
