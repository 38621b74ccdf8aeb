package mlflowclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/catdog-mlops/catdog/internal/atomicfile"
)

// Bounds of tree transfers.
const (
	maxArtifactFiles = 100000 // files in one uploaded or downloaded tree
	maxListDepth     = 64
)

// ArtifactRoot is an artifact URI served through the tracking server's artifact proxy,
// e.g. a run's "mlflow-artifacts:/1/<run>/artifacts".
type ArtifactRoot struct {
	base *url.URL // scheme+host(+prefix) of the proxy
	path string   // path below /api/2.0/mlflow-artifacts/artifacts/, no leading or trailing '/'
}

// String returns the proxy path of the root.
func (r ArtifactRoot) String() string { return "mlflow-artifacts:/" + r.path }

// Join returns the root of a sub-directory.
func (r ArtifactRoot) Join(p string) ArtifactRoot {
	r.path = strings.Trim(path.Join(r.path, p), "/")
	return r
}

// ResolveArtifactURI maps an artifact URI to the proxy. mlflow-artifacts:/p goes to this
// tracking server; mlflow-artifacts://host:port/p to that host with the tracking URI's scheme.
// Any other scheme (s3, file, gs, ...) gives an error matching ErrNotProxied.
func (c *Client) ResolveArtifactURI(uri string) (ArtifactRoot, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return ArtifactRoot{}, fmt.Errorf("mlflow: artifact URI %q: %w", uri, err)
	}
	if u.Scheme != "mlflow-artifacts" {
		return ArtifactRoot{}, fmt.Errorf("%w: %q", ErrNotProxied, uri)
	}
	base := c.base
	if u.Host != "" {
		b := *c.base
		b.Host = u.Host
		b.Path = ""
		base = &b
	}
	return ArtifactRoot{base: base, path: strings.Trim(u.Path, "/")}, nil
}

// RunArtifactRoot returns the proxied artifact root of a run.
func (c *Client) RunArtifactRoot(ctx context.Context, runID string) (ArtifactRoot, error) {
	run, err := c.GetRun(ctx, runID)
	if err != nil {
		return ArtifactRoot{}, err
	}
	root, err := c.ResolveArtifactURI(run.Info.ArtifactURI)
	if err != nil {
		return ArtifactRoot{}, fmt.Errorf("run %s: %w", runID, err)
	}
	return root, nil
}

func (r ArtifactRoot) fileURL(p string) string {
	segs := strings.Split(path.Join(r.path, p), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return r.base.String() + "/api/2.0/mlflow-artifacts/artifacts/" + strings.Join(segs, "/")
}

// ValidateArtifactPath rejects what the server's validate_path_is_safe rejects: absolute
// paths, ".." segments, backslashes and '#'.
func ValidateArtifactPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\#") || filepath.IsAbs(p) {
		return &ValidationError{Field: "artifact path", Value: trunc(p), Reason: "must be relative without '\\' or '#'"}
	}
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return &ValidationError{Field: "artifact path", Value: trunc(p), Reason: "must not contain '..'"}
		}
	}
	return nil
}

// UploadFile streams the local file to artifactPath (a file path below the root), with
// Content-Length set. The file is reopened on each retry.
func (c *Client) UploadFile(ctx context.Context, root ArtifactRoot, localPath, artifactPath string) error {
	if err := ValidateArtifactPath(artifactPath); err != nil {
		return err
	}
	st, err := os.Stat(localPath)
	if err != nil {
		return fmt.Errorf("mlflow: upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("mlflow: upload %s: not a regular file", localPath)
	}
	ctype := mime.TypeByExtension(path.Ext(artifactPath))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	u := root.fileURL(artifactPath)
	return c.retryingT(ctx, http.MethodPut, "artifact "+artifactPath, true, false, func(ctx context.Context) error {
		f, err := os.Open(localPath)
		if err != nil {
			return fmt.Errorf("mlflow: upload: %w", err)
		}
		defer f.Close()
		ctx = context.WithValue(ctx, contentLengthKey{}, st.Size())
		resp, err := c.newReq(ctx).SetHeader("Content-Type", ctype).SetBody(io.Reader(f)).Put(u)
		if err != nil {
			return err
		}
		return c.checkError(resp.RawResponse, resp.Body())
	})
}

// UploadDir uploads every regular file below localDir to artifactPath ("" = the root),
// keeping the relative layout. Symlinks are not followed.
func (c *Client) UploadDir(ctx context.Context, root ArtifactRoot, localDir, artifactPath string) error {
	if err := ValidateArtifactPath(artifactPath); err != nil {
		return err
	}
	var files []string
	err := filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
			if len(files) > maxArtifactFiles {
				return fmt.Errorf("more than %d files", maxArtifactFiles)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", localDir, err)
	}
	for _, p := range files {
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		if err := c.UploadFile(ctx, root, p, path.Join(artifactPath, filepath.ToSlash(rel))); err != nil {
			return err
		}
	}
	return nil
}

// listArtifacts lists the direct children of dir below root (paths relative to root).
// A missing directory lists as empty, as on the server.
func (c *Client) listArtifacts(ctx context.Context, root ArtifactRoot, dir string) ([]FileInfo, error) {
	if err := ValidateArtifactPath(dir); err != nil {
		return nil, err
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	err := c.retrying(ctx, http.MethodGet, "artifact list "+dir, true, func(ctx context.Context) error {
		resp, err := c.newReq(ctx).SetQueryParam("path", path.Join(root.path, dir)).
			Get(root.base.String() + "/api/2.0/mlflow-artifacts/artifacts")
		if err != nil {
			return err
		}
		if err := c.checkError(resp.RawResponse, resp.Body()); err != nil {
			return err
		}
		return json.Unmarshal(resp.Body(), &out)
	})
	if err != nil {
		return nil, err
	}
	files := out.Files
	for i := range files {
		files[i].Path = path.Join(dir, files[i].Path) // the proxy answers basenames
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// listRunArtifacts lists the direct children of dir in a run's artifacts through
// /mlflow/artifacts/list (paths are run-relative).
func (c *Client) listRunArtifacts(ctx context.Context, runID, dir string) ([]FileInfo, error) {
	v := url.Values{"run_id": {runID}}
	if dir != "" {
		v.Set("path", dir)
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: api("/artifacts/list"), query: v, out: &out, idempotent: true})
	return out.Files, err
}

// openArtifact streams one artifact file. The caller closes the reader.
func (c *Client) openArtifact(ctx context.Context, root ArtifactRoot, p string) (io.ReadCloser, error) {
	if err := ValidateArtifactPath(p); err != nil {
		return nil, err
	}
	var body io.ReadCloser
	err := c.retryingT(ctx, http.MethodGet, "artifact "+p, true, false, func(ctx context.Context) error {
		resp, err := c.newReq(ctx).SetDoNotParseResponse(true).Get(root.fileURL(p))
		if err != nil {
			return err
		}
		raw := resp.RawBody()
		if resp.StatusCode() >= 300 {
			b, _ := io.ReadAll(io.LimitReader(raw, maxErrorBody*4))
			raw.Close()
			return c.checkError(resp.RawResponse, b)
		}
		body = raw
		return nil
	})
	return body, err
}

// DownloadDir downloads the tree below dir (relative to root) into localDir and returns the
// files written (relative to localDir). Files are written to a temporary name and renamed.
func (c *Client) DownloadDir(ctx context.Context, root ArtifactRoot, dir, localDir string) ([]string, error) {
	var files []FileInfo
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		if depth > maxListDepth {
			return fmt.Errorf("mlflow: artifact tree deeper than %d", maxListDepth)
		}
		entries, err := c.listArtifacts(ctx, root, d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir {
				if err := walk(e.Path, depth+1); err != nil {
					return err
				}
				continue
			}
			files = append(files, e)
			if len(files) > maxArtifactFiles {
				return fmt.Errorf("mlflow: more than %d artifacts", maxArtifactFiles)
			}
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no artifacts under %s", ErrNotFound, root.Join(dir))
	}
	var written []string
	for _, f := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(f.Path, dir), "/")
		if err := ValidateArtifactPath(rel); err != nil || rel == "" {
			return written, fmt.Errorf("mlflow: unsafe artifact path %q", f.Path)
		}
		dst := filepath.Join(localDir, filepath.FromSlash(rel))
		if err := c.downloadFile(ctx, root, f.Path, dst); err != nil {
			return written, err
		}
		written = append(written, rel)
	}
	return written, nil
}

func (c *Client) downloadFile(ctx context.Context, root ArtifactRoot, p, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rc, err := c.openArtifact(ctx, root, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	})
	if err != nil {
		return fmt.Errorf("mlflow: download %s: %w", p, err)
	}
	return nil
}
