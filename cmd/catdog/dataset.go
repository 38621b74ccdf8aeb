//go:build !catdog_light

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/repo"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/mlflowclient"
)

// datasetSchema is the MLflow column spec of the photos: an image and its label.
const datasetSchema = `{"mlflow_colspec": [{"type": "binary", "name": "image", "required": true}, {"type": "string", "name": "label", "required": true}]}`

// trainingDataset describes the data a training run uses as an MLflow dataset input: with a
// .dvc file, the tracked folder (name), its DVC .dir md5 (digest) and the DVC remote it is
// pushed to (source); otherwise the prepared data's source folder and manifest md5. The
// profile holds the split sizes (train capped by limit) and the tracked files and bytes.
func trainingDataset(dvcFile, preparedDir string, limit int) (mlflowclient.DatasetInput, error) {
	prep, err := imageprep.ReadPrepared(preparedDir)
	if err != nil {
		return mlflowclient.DatasetInput{}, err
	}
	profile := map[string]any{"classes": prep.Classes, "image_size": prep.Size, "rejected": prep.Rejected}
	for name, s := range prep.Splits {
		n := s.Count
		if name == "train" && limit > 0 && limit < n {
			n = limit
		}
		profile[name] = n
	}
	ds := mlflowclient.Dataset{Schema: datasetSchema}
	source := map[string]any{}
	if dvcFile == "" {
		src := prep.Source
		if src == "" {
			src = preparedDir
		}
		abs, _ := filepath.Abs(src)
		ds.Name, ds.Digest, ds.SourceType = filepath.Base(abs), prep.ManifestMD5, "local"
		source["uri"] = abs
	} else {
		b, err := os.ReadFile(dvcFile)
		if err != nil {
			return mlflowclient.DatasetInput{}, err
		}
		f, err := dvcfmt.ParseDVCFile(b)
		if err != nil {
			return mlflowclient.DatasetInput{}, err
		}
		if len(f.Outs) != 1 || f.Outs[0].MD5 == "" {
			return mlflowclient.DatasetInput{}, fmt.Errorf("%s: want one output with an md5", dvcFile)
		}
		out := f.Outs[0]
		ds.Name, ds.Digest, ds.SourceType = path.Base(out.Path), out.MD5, "dvc"
		source["path"] = out.Path
		if out.NFiles > 0 {
			profile["files"] = out.NFiles
		}
		profile["size_bytes"] = out.Size
		uri, err := dvcRemoteURL(filepath.Dir(dvcFile), out.Remote)
		if err != nil {
			return mlflowclient.DatasetInput{}, fmt.Errorf("%s: %w", dvcFile, err)
		}
		source["uri"] = uri
	}
	sb, err := json.Marshal(source)
	if err != nil {
		return mlflowclient.DatasetInput{}, err
	}
	pb, err := json.Marshal(profile)
	if err != nil {
		return mlflowclient.DatasetInput{}, err
	}
	ds.Source, ds.Profile = string(sb), string(pb)
	return mlflowclient.DatasetInput{Tags: []mlflowclient.Tag{{Key: mlflowclient.TagDatasetContext, Value: "training"}}, Dataset: ds}, ds.Validate()
}

// dvcRemoteURL is the URL of the DVC remote name (default: core.remote) of the repository
// holding dir, with credentials removed; a relative local remote is resolved against .dvc/,
// as dvc does. Without a remote it is the repository's root folder.
func dvcRemoteURL(dir, name string) (string, error) {
	r, err := repo.Find(dir)
	if err != nil {
		return "", err
	}
	name, err = r.RemoteName(name)
	if errors.Is(err, repo.ErrNoRemote) {
		return r.Root, nil // no remote: the data lives in the workspace only
	}
	if err != nil {
		return "", err
	}
	u, _ := r.Config().Get(dvcfmt.RemoteSection(name), "url")
	if u == "" {
		return "", fmt.Errorf("DVC remote %q has no url", name)
	}
	if !strings.Contains(u, "://") {
		if !filepath.IsAbs(u) {
			u = filepath.Join(r.Root, repo.DvcDir, u)
		}
		return filepath.Clean(u), nil
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("DVC remote %q: %w", name, err)
	}
	pu.User = nil
	return pu.String(), nil
}
