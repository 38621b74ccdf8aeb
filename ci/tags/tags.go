// Package tags computes image tags from a git context the way docker/metadata-action names
// them with this configuration:
//
//	tags: |
//	  type=ref,event=branch
//	  type=ref,event=pr
//	  type=semver,pattern={{version}}
//	  type=semver,pattern={{major}}.{{minor}}
//	  type=sha
//	flavor: latest=auto
//
// so refs/heads/my/branch gives "my-branch", refs/pull/12/merge gives "pr-12", refs/tags/v1.2.3
// gives "1.2.3", "1.2" and "latest", and every commit adds "sha-<7 hex>". It is a pure function
// of its input; FromGit only gathers the input (in Actions, catdog image's --ref and --sha
// read GITHUB_REF and GITHUB_SHA).
package tags

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Context is the part of a GitHub Actions run that names an image.
type Context struct {
	// Ref is the full git ref: refs/heads/<branch>, refs/tags/<tag> or refs/pull/<n>/merge.
	Ref string
	// SHA is the commit (at least 7 hex digits).
	SHA string
}

// ErrNoTags is returned when the context yields no tag at all (no recognised ref and no SHA).
var ErrNoTags = errors.New("tags: no tag can be derived from the git context")

// metadata-action's sanitisation: every run of characters outside [a-zA-Z0-9._-] becomes "-".
var invalidTagChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// semverRe is node-semver's strict grammar (semver.valid without loose), with the optional
// leading "v" or "=" it accepts.
var semverRe = regexp.MustCompile(`^[v=]?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?` +
	`(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$`)

var shaRe = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// sanitize makes s a valid tag the way metadata-action does.
func sanitize(s string) string { return invalidTagChars.ReplaceAllString(s, "-") }

// Compute returns the tags for c, ordered as metadata-action outputs them: the
// highest-priority tag (semver > ref > sha), the other partial tags, then "latest".
func Compute(c Context) ([]string, error) {
	if c.SHA != "" && !shaRe.MatchString(c.SHA) {
		return nil, fmt.Errorf("tags: %q is not a commit SHA", c.SHA)
	}
	var out []string
	latest := false
	add := func(tag string, isLatest bool) {
		if tag == "" {
			return
		}
		tag = sanitize(tag)
		for _, t := range out {
			if t == tag {
				return
			}
		}
		if len(out) == 0 {
			latest = isLatest // flavor latest=auto follows the main (first) tag
		}
		out = append(out, tag)
	}
	// priority 900: semver
	if tag, ok := strings.CutPrefix(c.Ref, "refs/tags/"); ok {
		raw := strings.ReplaceAll(tag, "/", "-")
		if m := semverRe.FindStringSubmatch(raw); m != nil {
			version := m[1] + "." + m[2] + "." + m[3]
			if m[4] != "" { // pre-release: only {{version}}, never latest
				add(version+"-"+m[4], false)
			} else {
				add(version, true)
				add(m[1]+"."+m[2], true)
			}
		}
	}
	// priority 600: ref (branch, pr)
	if branch, ok := strings.CutPrefix(c.Ref, "refs/heads/"); ok {
		add(branch, false)
	}
	if pr, ok := strings.CutPrefix(c.Ref, "refs/pull/"); ok {
		add("pr-"+strings.TrimSuffix(pr, "/merge"), false)
	}
	// priority 100: sha
	if c.SHA != "" {
		add("sha-"+strings.ToLower(c.SHA[:7]), false)
	}
	if len(out) == 0 {
		return nil, ErrNoTags
	}
	if latest {
		out = append(out, "latest")
	}
	return out, nil
}

// Version returns the org.opencontainers.image.version label for c, as metadata-action sets it:
// the main tag (the cleaned semver version, branch name or pr-N), or the short SHA.
func Version(c Context) string {
	t, err := Compute(c)
	if err != nil {
		return ""
	}
	return t[0]
}

// FromGit reads the ref and commit of the checkout at dir with git (for local builds; in
// Actions GITHUB_REF and GITHUB_SHA give them). A detached HEAD gives an empty Ref.
func FromGit(ctx context.Context, dir string) (Context, error) {
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	sha, err := run("rev-parse", "HEAD")
	if err != nil {
		return Context{}, fmt.Errorf("tags: git rev-parse HEAD: %w", err)
	}
	ref, _ := run("symbolic-ref", "-q", "HEAD")
	return Context{Ref: ref, SHA: sha}, nil
}
