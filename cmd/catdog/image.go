package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/ci/gha"
	"github.com/catdog-mlops/catdog/ci/imagebuild"
	"github.com/catdog-mlops/catdog/ci/publish"
	"github.com/catdog-mlops/catdog/ci/tags"

	"github.com/catdog-mlops/catdog/internal/cachedir"

	"github.com/catdog-mlops/catdog/internal/progress"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageCommand is `catdog image`: build, push, tag and smoke-run the serving image.
func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "build, push and smoke-run the OCI image that serves the model (no Docker daemon)",
		Subcommands: []*cli.Command{
			{
				Name:  "build",
				Usage: "assemble the image (base, libtorch, app, model layers) and write it to a registry, an OCI layout or a tarball",
				Description: "Layers are reproducible (SOURCE_DATE_EPOCH or the epoch as the only timestamp) and cached by\n" +
					"content in --cache-dir, so only changed layers are compressed and pushed. Tags follow\n" +
					"docker/metadata-action (branch, pr-N, X.Y.Z and X.Y on a semver tag, sha-<7>). In GitHub Actions\n" +
					"the digest, image reference and tags go to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY.",
				Flags:  append(buildFlags(), pushFlags()...),
				Action: runImageBuild,
			},
			{
				Name:   "push",
				Usage:  "push an image from an OCI layout (written by `image build --oci-layout`) to a registry",
				Flags:  append(append([]cli.Flag{layoutFlag(true), layoutTagFlag()}, pushFlags()...), gitFlags()...),
				Action: runImagePush,
			},
			{
				Name:   "tags",
				Usage:  "print the tags docker/metadata-action would give this git ref and commit",
				Flags:  gitFlags(),
				Action: runImageTags,
			},
			imageRunCommand(),
		},
	}
}

// defaultCacheDir is catdog's cache directory for flag defaults; without one (no HOME, no
// $CATDOG_CACHE) the defaults are relative paths that the flags' errors name.
func defaultCacheDir() string {
	d, err := cachedir.Dir()
	if err != nil {
		return ".catdog-cache"
	}
	return d
}

func gitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "ref", Usage: "git ref naming the image (refs/heads/B, refs/tags/vX.Y.Z, refs/pull/N/merge); default: the checkout's", EnvVars: []string{"GITHUB_REF"}},
		&cli.StringFlag{Name: "sha", Usage: "commit SHA; default: the checkout's HEAD", EnvVars: []string{"GITHUB_SHA"}},
	}
}

func buildFlags() []cli.Flag {
	torch, _ := torchBinary() // the image runs `catdog serve`: it needs the libtorch build
	return append([]cli.Flag{
		modelDirFlag(),
		&cli.StringFlag{Name: "binary", Value: torch, Usage: "linux/amd64 catdog binary to put in the image as /usr/local/bin/catdog: the libtorch build (default: catdog-torch)"},
		&cli.StringFlag{Name: "libtorch-dir", Value: filepath.Join(defaultCacheDir(), "libtorch-2.1.2", "lib"), Usage: "folder of the libtorch shared libraries", EnvVars: []string{"CATDOG_LIBTORCH_DIR"}},
		&cli.StringFlag{Name: "base", Usage: "base image reference (e.g. a distroless cc image); default: assemble the base from this machine's Debian packages", EnvVars: []string{"CATDOG_BASE_IMAGE"}},
		&cli.StringFlag{Name: "cache-dir", Value: filepath.Join(defaultCacheDir(), "image-layers"), Usage: "content-addressed cache of compressed layers", EnvVars: []string{"CATDOG_IMAGE_CACHE"}},
		&cli.StringFlag{Name: "compression", Value: string(imagebuild.PGzip), Usage: "layer compressor: pgzip (parallel), kgzip (klauspost, one core) or gzip (standard library)"},
		&cli.IntFlag{Name: "level", Value: imagebuild.DefaultCompressionLevel, Usage: "gzip level 1-9"},
		&cli.Int64Flag{Name: "source-date-epoch", Value: -1, Usage: "creation time and file mtimes, in seconds since the epoch (default 0)", EnvVars: []string{"SOURCE_DATE_EPOCH"}},
		&cli.StringFlag{Name: "source", Usage: "org.opencontainers.image.source label (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY)"},
		&cli.StringSliceFlag{Name: "label", Usage: "extra label KEY=VALUE (repeatable)"},
		layoutFlag(false),
		layoutTagFlag(),
		&cli.StringFlag{Name: "tarball", Usage: "also write a docker-load tarball to this file"},
	}, gitFlags()...)
}

func layoutFlag(required bool) cli.Flag {
	return &cli.StringFlag{Name: "oci-layout", Required: required, Usage: "OCI image layout directory"}
}

func layoutTagFlag() cli.Flag {
	return &cli.StringFlag{Name: "layout-tag", Usage: "tag of the image inside the OCI layout (default: the first image tag)"}
}

func pushFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "repo", Usage: "push to this repository, e.g. ghcr.io/owner/catdog (credentials: docker config, or GITHUB_TOKEN for ghcr.io)", EnvVars: []string{"CATDOG_IMAGE_REPO"}},
		&cli.StringSliceFlag{Name: "tag", Usage: "image tag (repeatable); default: computed from --ref and --sha"},
		quietFlag(),
	}
}

// imageTags returns --tag, or the metadata-action tags of the git context.
func imageTags(c *cli.Context) ([]string, tags.Context, error) {
	gc := tags.Context{Ref: c.String("ref"), SHA: c.String("sha")}
	if gc.Ref == "" || gc.SHA == "" {
		local, err := tags.FromGit(c.Context, ".")
		if err == nil {
			if gc.Ref == "" {
				gc.Ref = local.Ref
			}
			if gc.SHA == "" {
				gc.SHA = local.SHA
			}
		}
	}
	if t := c.StringSlice("tag"); len(t) > 0 {
		return t, gc, nil
	}
	t, err := tags.Compute(gc)
	return t, gc, err
}

func actions(c *cli.Context) *gha.Actions {
	a := gha.New(c.App.Writer, gha.FromEnv(os.Getenv))
	if tok := os.Getenv("GITHUB_TOKEN"); tok != "" {
		a.Mask(tok)
	}
	return a
}

// fail reports err as an annotation in Actions and returns it.
func fail(a *gha.Actions, title string, err error) error {
	a.Error(err.Error(), gha.Annotation{Title: title})
	return err
}

func runImageBuild(c *cli.Context) error {
	a := actions(c)
	tagList, gc, err := imageTags(c)
	if err != nil {
		return fail(a, "image tags", fmt.Errorf("catdog image build: %w", err))
	}
	spec, err := buildSpec(c, gc)
	if _, usage := err.(cli.ExitCoder); usage {
		return err // a bad label is a usage error (exit 2), not a failed build
	}
	if err != nil {
		return fail(a, "image build", err)
	}
	end := a.Group("Build image")
	start := time.Now()
	res, err := buildImage(c, spec)
	end()
	if err != nil {
		return fail(a, "image build", err)
	}
	buildTime := time.Since(start)
	fmt.Fprintf(c.App.Writer, "built %s in %.1fs\n", res.Digest, buildTime.Seconds())
	summary := buildSummary(res, buildTime)
	if err := writeImageFiles(c, res, tagList); err != nil {
		return fail(a, "image build", err)
	}
	outputs := map[string]string{"digest": res.Digest.String(), "tags": strings.Join(tagList, "\n"), "version": spec.Labels[imagebuild.LabelVersion]}
	for k, v := range modelOutputs(spec.Labels) {
		outputs[k] = v
	}
	if repo := c.String("repo"); repo != "" {
		pushed, err := push(c, a, res.Image, repo, tagList)
		if err != nil {
			return err
		}
		outputs["image"] = pushed.Ref()
		summary += pushSummary(pushed)
	}
	for _, k := range []string{"digest", "image", "tags", "version", "model-name", "model-version", "run-id"} {
		if v, ok := outputs[k]; ok {
			if err := a.SetOutput(k, v); err != nil {
				return err
			}
		}
	}
	if a.Enabled() {
		return a.AppendSummary(summary)
	}
	return nil
}

// buildSpec reads the build flags into an imagebuild.Spec: the libtorch libraries, the labels
// (an invalid one is a usage error), the model directory and a binary that serves.
func buildSpec(c *cli.Context, gc tags.Context) (imagebuild.Spec, error) {
	created := time.Unix(0, 0)
	if sde := c.Int64("source-date-epoch"); sde >= 0 {
		created = time.Unix(sde, 0)
	}
	libs, err := imagebuild.LibrariesIn(c.String("libtorch-dir"))
	if err != nil {
		return imagebuild.Spec{}, err
	}
	labels, err := imageLabels(c, gc)
	if err != nil {
		return imagebuild.Spec{}, cli.Exit("catdog image build: "+err.Error(), 2)
	}
	spec := imagebuild.Spec{
		Binary: c.String("binary"), Libraries: libs, ModelDir: c.String("model"),
		BaseRef: c.String("base"), Labels: labels, Created: created,
	}
	if st, err := os.Stat(spec.ModelDir); err != nil || !st.IsDir() {
		return spec, fmt.Errorf("catdog image build: --model %s is not a directory", spec.ModelDir)
	}
	if spec.Binary == "" {
		return spec, fmt.Errorf("catdog image build: no --binary given and no catdog-torch found")
	}
	if err := imagebuild.CheckServes(spec.Binary); err != nil {
		return spec, fmt.Errorf("catdog image build: --binary: %w", err)
	}
	return spec, nil
}

// buildImage builds spec with the layer cache, compression and progress the flags ask for.
func buildImage(c *cli.Context, spec imagebuild.Spec) (*imagebuild.Result, error) {
	cache, err := imagebuild.NewCache(c.String("cache-dir"))
	if err != nil {
		return nil, err
	}
	opts := []imagebuild.Option{
		imagebuild.WithCompression(imagebuild.Compression(c.String("compression")), c.Int("level")),
		imagebuild.WithKeychain(publish.Keychain()),
		imagebuild.WithLogger(slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))),
	}
	if f := newProgress(c.App.ErrWriter, c.Bool("quiet"), byteLines); f != nil {
		opts = append(opts, imagebuild.WithProgress(func(name string, done, total int64) {
			f(progress.Update{Op: "compress " + name, Done: done, Total: total, Bytes: true, Final: done == total})
		}))
	}
	return imagebuild.NewBuilder(cache, opts...).Build(c.Context, spec)
}

// buildSummary is the step summary of a build: the digest, the time and a table of layers.
func buildSummary(res *imagebuild.Result, buildTime time.Duration) string {
	rows := make([][]string, 0, len(res.Layers))
	for _, l := range res.Layers {
		state := "compressed"
		if l.Cached {
			state = "cached"
		}
		rows = append(rows, []string{l.Name, l.Digest.String(), humanBytes(l.Size), state})
	}
	return "### catdog image\n\n" + fmt.Sprintf("Digest `%s`, built in %.1f s.\n\n", res.Digest, buildTime.Seconds()) +
		gha.Table([]string{"layer", "digest", "size", "build"}, rows)
}

// writeImageFiles writes the OCI layout (--oci-layout, tagged --layout-tag or the first tag)
// and the docker tarball (--tarball, as REPO:TAG for every tag) when asked for.
func writeImageFiles(c *cli.Context, res *imagebuild.Result, tagList []string) error {
	o := publish.Outputs{Layout: c.String("oci-layout"), LayoutTag: c.String("layout-tag"),
		Tarball: c.String("tarball"), Repo: c.String("repo"), Tags: tagList}
	layoutTag, err := publish.WriteOutputs(res.Image, o)
	if err != nil {
		return err
	}
	if o.Layout != "" {
		fmt.Fprintf(c.App.Writer, "wrote OCI layout %s (tag %s)\n", o.Layout, layoutTag)
	}
	if o.Tarball != "" {
		fmt.Fprintf(c.App.Writer, "wrote tarball %s\n", o.Tarball)
	}
	return nil
}

// modelOutputs are the image's model labels as step outputs named like `catdog deploy`'s
// flags (model-name, model-version, run-id), so that a workflow hands them from the image
// build to the deploy; labels a local (unregistered) model lacks are left out.
func modelOutputs(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, l := range map[string]string{"model-name": LabelModelName, "model-version": LabelModelVersion, "run-id": LabelModelRunID} {
		if v := labels[l]; v != "" {
			out[k] = v
		}
	}
	return out
}

// imageLabels reads the label inputs: --source (or the GitHub repository), the git context,
// the provenance of a model pulled from the registry and --label.
func imageLabels(c *cli.Context, gc tags.Context) (map[string]string, error) {
	source := c.String("source")
	if srv, repo := os.Getenv("GITHUB_SERVER_URL"), os.Getenv("GITHUB_REPOSITORY"); source == "" && srv != "" && repo != "" {
		source = srv + "/" + repo
	}
	model, err := provenanceLabels(c.String("model"))
	if err != nil {
		return nil, err
	}
	return imagebuild.Labels(imagebuild.LabelInputs{Source: source, Revision: gc.SHA, Version: tags.Version(gc),
		Model: model, Extra: c.StringSlice("label")})
}

func push(c *cli.Context, a *gha.Actions, img v1.Image, repo string, tagList []string) (*publish.Result, error) {
	var opts []publish.Option
	if f := newProgress(c.App.ErrWriter, c.Bool("quiet"), byteLines); f != nil {
		opts = append(opts, publish.WithProgress(func(done, total int64) {
			f(progress.Update{Op: "upload", Done: done, Total: total, Bytes: true, Final: done == total})
		}))
	}
	end := a.Group("Push " + repo)
	start := time.Now()
	pushed, err := publish.Push(c.Context, img, repo, tagList, opts...)
	end()
	if err != nil {
		return nil, fail(a, "image push", err)
	}
	fmt.Fprintf(c.App.Writer, "pushed %s (%d blobs uploaded, %d retried requests) in %.1fs\n",
		pushed.Ref(), len(pushed.Uploaded), pushed.Retried, time.Since(start).Seconds())
	for _, t := range tagList {
		fmt.Fprintf(c.App.Writer, "  %s:%s\n", pushed.Repository, t)
	}
	return pushed, nil
}

func pushSummary(p *publish.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPushed `%s` (%d blobs uploaded; unchanged layers skipped).\n\n", p.Ref(), len(p.Uploaded))
	for _, t := range p.Tags {
		fmt.Fprintf(&b, "- `%s:%s`\n", p.Repository, t)
	}
	return b.String()
}

func runImagePush(c *cli.Context) error {
	a := actions(c)
	repo := c.String("repo")
	if repo == "" {
		return cli.Exit("catdog image push: --repo is required", 2)
	}
	tagList, _, err := imageTags(c)
	if err != nil {
		return fail(a, "image tags", fmt.Errorf("catdog image push: %w", err))
	}
	img, err := publish.ReadLayout(c.String("oci-layout"), c.String("layout-tag"))
	if err != nil {
		return fail(a, "image push", err)
	}
	pushed, err := push(c, a, img, repo, tagList)
	if err != nil {
		return err
	}
	if err := a.SetOutput("digest", pushed.Digest.String()); err != nil {
		return err
	}
	if err := a.SetOutput("image", pushed.Ref()); err != nil {
		return err
	}
	if a.Enabled() {
		return a.AppendSummary("### catdog image push\n" + pushSummary(pushed))
	}
	return nil
}

func runImageTags(c *cli.Context) error {
	a := actions(c)
	tagList, _, err := imageTags(c)
	if err != nil {
		return fail(a, "image tags", err)
	}
	if a.Enabled() {
		return a.SetOutput("tags", strings.Join(tagList, "\n"))
	}
	for _, t := range tagList {
		fmt.Fprintln(c.App.Writer, t)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
