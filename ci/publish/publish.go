// Package publish writes a built image to its sinks: a registry (remote.Write), an OCI image
// layout directory, or a `docker save`-style tarball.
//
// Pushing skips blobs the registry already has (so a rebuild that changed only the model
// uploads one layer), retries transient registry errors with backoff, reports progress and
// records which blobs it actually uploaded.
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Keychain returns the default credentials: the Docker/podman config files
// (authn.DefaultKeychain), then GITHUB_ACTOR/GITHUB_TOKEN for ghcr.io.
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(authn.DefaultKeychain, github.Keychain)
}

// Progress receives the bytes uploaded so far and the total to upload.
type Progress func(complete, total int64)

type options struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	backoff   remote.Backoff
	progress  Progress
	jobs      int
	userAgent string
}

// Option configures Push.
type Option func(*options)

// WithKeychain sets the credentials. The default is Keychain().
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport sets the HTTP transport under the retry and user-agent wrappers. The default
// is remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithRetryBackoff sets the backoff for transient errors (429, 5xx, timeouts, resets). The
// default is 4 attempts: 1 s, 3 s, 9 s apart (±10%).
func WithRetryBackoff(b remote.Backoff) Option { return func(o *options) { o.backoff = b } }

// WithProgress reports upload progress. The default reports nothing.
func WithProgress(p Progress) Option { return func(o *options) { o.progress = p } }

// WithJobs sets how many blobs upload concurrently. The default is 4.
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithUserAgent sets the User-Agent prefix. The default is "catdog".
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// DefaultBackoff is the retry schedule used when WithRetryBackoff is not given.
func DefaultBackoff() remote.Backoff {
	return remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 4}
}

// Result describes a push.
type Result struct {
	// Repository is the image repository, e.g. "ghcr.io/owner/repo".
	Repository string
	// Digest is the manifest digest; Repository + "@" + Digest is the immutable reference.
	Digest v1.Hash
	// Tags that now point at Digest.
	Tags []string
	// Uploaded lists the blobs (layers and config) that were sent; blobs the registry already
	// had are skipped.
	Uploaded []v1.Hash
	// Retried counts requests answered with a retryable status (429, 5xx) before succeeding.
	Retried int
}

// Ref returns the digest reference "repo@sha256:...".
func (r *Result) Ref() string { return r.Repository + "@" + r.Digest.String() }

// ErrNoTags is returned by Push when no tag is given.
var ErrNoTags = errors.New("publish: at least one tag is needed")

// Push uploads img to repo under every tag: the first tag with remote.Write (blobs, then the
// manifest), the others as manifest-only remote.Tag calls.
func Push(ctx context.Context, img v1.Image, repo string, tags []string, opts ...Option) (*Result, error) {
	o := options{
		keychain:  Keychain(),
		transport: remote.DefaultTransport,
		backoff:   DefaultBackoff(),
		jobs:      4,
		userAgent: "catdog",
	}
	for _, opt := range opts {
		opt(&o)
	}
	if len(tags) == 0 {
		return nil, ErrNoTags
	}
	r, err := name.NewRepository(repo)
	if err != nil {
		return nil, fmt.Errorf("publish: repository %q: %w", repo, err)
	}
	refs := make([]name.Tag, 0, len(tags))
	for _, t := range tags {
		ref, err := name.NewTag(r.Name() + ":" + t)
		if err != nil {
			return nil, fmt.Errorf("publish: tag %q: %w", t, err)
		}
		refs = append(refs, ref)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("publish: digest: %w", err)
	}
	rec := &recorder{inner: o.transport}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(rec),
		remote.WithRetryBackoff(o.backoff),
		remote.WithJobs(o.jobs),
		remote.WithUserAgent(o.userAgent),
	}
	writeOpts := ropts
	var wg sync.WaitGroup
	if o.progress != nil {
		updates := make(chan v1.Update, 64)
		writeOpts = append(append([]remote.Option{}, ropts...), remote.WithProgress(updates))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range updates {
				if u.Error == nil {
					o.progress(u.Complete, u.Total)
				}
			}
		}()
	}
	err = remote.Write(refs[0], img, writeOpts...)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("publish: push %s: %w", refs[0], err)
	}
	for _, ref := range refs[1:] {
		if err := remote.Tag(ref, img, ropts...); err != nil {
			return nil, fmt.Errorf("publish: tag %s: %w", ref, err)
		}
	}
	res := &Result{Repository: r.Name(), Digest: digest, Tags: tags}
	res.Uploaded, res.Retried = rec.result()
	return res, nil
}

// recorder notes completed blob uploads (the final PUT ...?digest=, answered 201) and
// retryable answers. It sits under ggcr's retry transport, so it sees every attempt.
type recorder struct {
	inner    http.RoundTripper
	mu       sync.Mutex
	uploaded map[v1.Hash]bool
	retried  int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		r.retried++
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated && strings.Contains(req.URL.Path, "/blobs/uploads/"):
		if d, perr := v1.NewHash(req.URL.Query().Get("digest")); perr == nil {
			if r.uploaded == nil {
				r.uploaded = map[v1.Hash]bool{}
			}
			r.uploaded[d] = true
		}
	}
	return resp, nil
}

func (r *recorder) result() ([]v1.Hash, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]v1.Hash, 0, len(r.uploaded))
	for h := range r.uploaded {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, r.retried
}

// WriteLayout writes img into the OCI image layout at dir (created if needed), annotated with
// org.opencontainers.image.ref.name = tag when tag is not empty. An existing entry with the
// same tag is replaced, so the layout keeps one image per tag.
func WriteLayout(img v1.Image, dir, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("publish: layout %s: %w", dir, err)
		}
	}
	var lopts []layout.Option
	if tag != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
		if err := p.RemoveDescriptors(matchRefName(tag)); err != nil {
			return fmt.Errorf("publish: layout %s: %w", dir, err)
		}
	}
	if err := p.AppendImage(img, lopts...); err != nil {
		return fmt.Errorf("publish: layout %s: %w", dir, err)
	}
	return nil
}

func matchRefName(tag string) func(v1.Descriptor) bool {
	return func(d v1.Descriptor) bool { return d.Annotations["org.opencontainers.image.ref.name"] == tag }
}

// ReadLayout returns the image tagged tag (or the only image when tag is empty) from the OCI
// layout at dir.
func ReadLayout(dir, tag string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("publish: layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("publish: layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("publish: layout %s: %w", dir, err)
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		if tag == "" || matchRefName(tag)(d) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("publish: layout %s has %d images tagged %q, want 1", dir, len(found), tag)
	}
	return idx.Image(found[0].Digest)
}

// WriteTarball writes img as a `docker load`-compatible tarball at path, tagged with refs
// (full references such as "ghcr.io/owner/repo:main"). The file is written to a temp name and
// renamed into place.
func WriteTarball(img v1.Image, path string, refs []string) error {
	if len(refs) == 0 {
		return fmt.Errorf("publish: tarball needs at least one reference")
	}
	m := map[name.Reference]v1.Image{}
	for _, s := range refs {
		ref, err := name.ParseReference(s)
		if err != nil {
			return fmt.Errorf("publish: tarball reference %q: %w", s, err)
		}
		m[ref] = img
	}
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return tarball.MultiRefWrite(m, w)
	})
	if err != nil {
		return fmt.Errorf("publish: tarball %s: %w", path, err)
	}
	return nil
}

// Outputs names the local copies of an image that `catdog image build` writes.
type Outputs struct {
	Layout    string   // OCI layout directory ("" = none)
	LayoutTag string   // the image's tag inside the layout ("" = Tags[0])
	Tarball   string   // docker-load tarball ("" = none)
	Repo      string   // repository the tarball's references name ("" = "catdog")
	Tags      []string // image tags; the tarball holds REPO:TAG for each
}

// WriteOutputs writes img to the layout and the tarball o asks for and returns the tag it was
// given in the layout ("" when no layout was written).
func WriteOutputs(img v1.Image, o Outputs) (layoutTag string, err error) {
	if len(o.Tags) == 0 {
		return "", fmt.Errorf("publish: outputs need at least one tag")
	}
	if o.Layout != "" {
		layoutTag = o.LayoutTag
		if layoutTag == "" {
			layoutTag = o.Tags[0]
		}
		if err := WriteLayout(img, o.Layout, layoutTag); err != nil {
			return "", err
		}
	}
	if o.Tarball != "" {
		repo := o.Repo
		if repo == "" {
			repo = "catdog"
		}
		refs := make([]string, 0, len(o.Tags))
		for _, t := range o.Tags {
			refs = append(refs, repo+":"+t)
		}
		if err := WriteTarball(img, o.Tarball, refs); err != nil {
			return layoutTag, err
		}
	}
	return layoutTag, nil
}

// Pull returns the linux/amd64 image at ref (a tag or digest reference).
func Pull(ctx context.Context, ref string, opts ...Option) (v1.Image, error) {
	o := options{keychain: Keychain(), transport: remote.DefaultTransport, backoff: DefaultBackoff(), userAgent: "catdog"}
	for _, opt := range opts {
		opt(&o)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("publish: reference %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain),
		remote.WithTransport(o.transport), remote.WithRetryBackoff(o.backoff), remote.WithUserAgent(o.userAgent),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, fmt.Errorf("publish: pull %s: %w", ref, err)
	}
	return img, nil
}
