// Package modeldir names the files of a catdog model directory: the contract between the
// packages that write one (train, evaluate), carry it (mlflowclient tracking, ci images,
// model pull) and read it (model, inference). It has no dependencies, so packages that must
// build without libtorch (mlflowclient, ci) use the same names as model.
package modeldir

const (
	// Weights is the network's weights (a gotch VarStore).
	Weights = "best_model.ot"
	// Info is model.json: architecture, input size, classes, training epoch.
	Info = "model.json"
	// Metrics is metrics.json: test-split evaluation, best epoch and per-epoch figures.
	Metrics = "metrics.json"
	// Manifest is the prepared data's manifest.csv (path, md5, label, split), copied in so the
	// model names the exact split it was trained and tested on.
	Manifest = "manifest.csv"
	// ConfusionMatrix and LearningCurves are the training plots (PNG).
	ConfusionMatrix = "confusion_matrix.png"
	LearningCurves  = "learning_curves.png"
	// DriftProfile is the training-split reference profile for drift detection (drift.Profile).
	DriftProfile = "drift_profile.json"
	// Evaluation is the JSON `catdog evaluate --json` writes next to the model in the main job.
	Evaluation = "evaluation.json"
	// LearningCurvesCSV is the per-epoch training curves as CSV, written beside
	// LearningCurves so that `dvc plots show` (and any spreadsheet) can draw them from data.
	LearningCurvesCSV = "learning_curves.csv"
	// Digests lists the sha256 of every file of the directory (sha256sum format, so
	// `sha256sum -c SHA256SUMS` checks it too). `catdog train` writes it before the upload;
	// `catdog model pull` verifies the downloaded files against it.
	Digests = "SHA256SUMS"
	// MLmodel is MLflow's model descriptor, added by the upload (after Digests).
	MLmodel = "MLmodel"
	// Provenance records which registered version a pulled directory is (`catdog model pull`
	// writes it; `catdog image build` turns it into labels).
	Provenance = "registered_model.json"
)

// Required lists the files without which a directory is not a model that can be served.
var Required = []string{Weights, Info}

// Reports lists the files that training writes for people (and MLflow's artifact root).
var Reports = []string{ConfusionMatrix, LearningCurves, Metrics, Manifest}
