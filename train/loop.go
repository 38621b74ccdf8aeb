package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/imageprep"
	"github.com/catdog-mlops/catdog/internal/atomicfile"
	"github.com/catdog-mlops/catdog/internal/buildinfo"
	"github.com/catdog-mlops/catdog/internal/progress"
	"github.com/catdog-mlops/catdog/model"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

// Options configure one training run.
type Options struct {
	// Params are the hyper-parameters (see params.yaml).
	Params Params
	// DataDir is a folder written by `catdog prepare` (prepared.json, {train,val,test}.u8).
	DataDir string
	// OutDir receives the model directory (best_model.ot, model.json, metrics.json, plots).
	OutDir string
	// Tracker receives params, per-epoch metrics and tags; nil means NopTracker.
	Tracker Tracker
	// Log receives one structured line per epoch; nil discards.
	Log *slog.Logger
	// Progress receives the batches of each epoch as they are trained; nil reports nothing.
	Progress progress.Func
	// Limit caps the number of training images (0 = all), for quick runs and tests.
	Limit int
	// Name is recorded in model.json (default "catdog").
	Name string
	// ExtraParams are tracked with the hyper-parameters (e.g. the DVC hash of the raw data).
	ExtraParams map[string]string
	// EpochEnd, when set, is called after each epoch (validation scored, best epoch saved);
	// an error stops training and Run returns it (a sweep stops a bad trial this way).
	EpochEnd func(EpochStats) error
}

// EpochStats are one epoch's figures.
type EpochStats struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_accuracy"`
	ValLoss   float64 `json:"val_loss"`
	ValAcc    float64 `json:"val_accuracy"`
	LR        float64 `json:"lr"`
	Seconds   float64 `json:"seconds"`
	ImagesPS  float64 `json:"train_images_per_second"`
	RSSBytes  int64   `json:"rss_bytes"`
}

// Result is what a training run produced.
type Result struct {
	Epochs    []EpochStats `json:"epochs"`
	BestEpoch int          `json:"best_epoch"`
	BestVal   float64      `json:"best_val_accuracy"`
	Test      Evaluation   `json:"test"`
	ModelDir  string       `json:"model_dir"`
	Info      model.Info   `json:"-"`
}

// Run trains the network on the prepared data, keeps the epoch with the best validation
// accuracy, evaluates it on the test split and writes the model directory.
func Run(ctx context.Context, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	p := o.Params
	data, err := loadData(o)
	if err != nil {
		return nil, err
	}
	// The drift reference of the images trained on; computed first so that a missing source
	// photo fails the run before the epochs, not after.
	profile, err := referenceProfile(o.DataDir, data.prep, data.train)
	if err != nil {
		return nil, err
	}

	// libtorch keeps grad mode per OS thread: run the whole loop on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts.MustGradSetEnabled(true)
	model.SetThreads(p.threads())
	model.Seed(p.Seed)
	l, err := newLearner(p, data.train.N)
	if err != nil {
		return nil, err
	}
	defer l.close()

	info := model.Info{
		Name: o.Name, Arch: p.Arch, InputSize: p.InputSize, Mean: p.Mean, Std: p.Std,
		Classes: data.prep.Classes, DatasetManifestMD5: data.prep.ManifestMD5, TTA: p.TTA, TTACrops: p.TTACrops,
		CatdogVersion: buildinfo.Version(),
	}
	track(ctx, o.Log, "params", o.Tracker.LogParams(ctx, trackedParams(o, data)))

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	res := &Result{ModelDir: o.OutDir, BestEpoch: -1}
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		st, err := l.epoch(ctx, o, data, epoch)
		if err != nil {
			return res, err
		}
		res.Epochs = append(res.Epochs, st)
		o.Log.Info("epoch", "epoch", epoch, "train_loss", round(st.TrainLoss), "train_accuracy", round(st.TrainAcc),
			"val_loss", round(st.ValLoss), "val_accuracy", round(st.ValAcc), "seconds", round(st.Seconds), "images_per_second", round(st.ImagesPS))
		track(ctx, o.Log, "metrics", o.Tracker.LogMetrics(ctx, int64(epoch), map[string]float64{
			"train_loss": st.TrainLoss, "train_accuracy": st.TrainAcc, "val_loss": st.ValLoss,
			"val_accuracy": st.ValAcc, "lr": st.LR, "epoch_seconds": st.Seconds, "train_images_per_second": st.ImagesPS,
		}))
		if res.BestEpoch < 0 || st.ValAcc > res.BestVal {
			res.BestEpoch, res.BestVal = epoch, st.ValAcc
			info.Epoch = epoch
			if err := l.evalNet.Save(o.OutDir, info); err != nil {
				return res, err
			}
		}
		if o.EpochEnd != nil {
			if err := o.EpochEnd(st); err != nil {
				return res, err
			}
		}
	}
	return res, l.finish(ctx, o, data, res, info, profile)
}

// withDefaults validates the parameters and fills the optional fields.
func (o Options) withDefaults() (Options, error) {
	if err := o.Params.Validate(); err != nil {
		return o, err
	}
	if o.Tracker == nil {
		o.Tracker = NopTracker{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "catdog"
	}
	return o, nil
}

// trainData is the prepared data of one run: its metadata and the three splits, train
// possibly cut to Options.Limit images.
type trainData struct {
	prep             *imageprep.Prepared
	train, val, test *imageprep.Dataset
}

// loadData reads the prepared data in o.DataDir and checks that it fits the parameters.
func loadData(o Options) (*trainData, error) {
	p := o.Params
	prep, err := imageprep.ReadPrepared(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if prep.Size != p.InputSize {
		return nil, fmt.Errorf("train: data in %s was prepared at %dx%d but input_size is %d: run `catdog prepare --size %d` or change params",
			o.DataDir, prep.Size, prep.Size, p.InputSize, p.InputSize)
	}
	if int64(len(prep.Classes)) != p.Arch.Classes {
		return nil, fmt.Errorf("train: data has %d classes, architecture %d", len(prep.Classes), p.Arch.Classes)
	}
	d := &trainData{prep: prep}
	for _, s := range []struct {
		name string
		ds   **imageprep.Dataset
	}{{"train", &d.train}, {"val", &d.val}, {"test", &d.test}} {
		ds, err := imageprep.LoadSplit(o.DataDir, s.name)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if ds.N == 0 {
			return nil, fmt.Errorf("train: split %q of %s is empty", s.name, o.DataDir)
		}
		*s.ds = ds
	}
	if o.Limit > 0 && o.Limit < d.train.N {
		d.train = subset(d.train, o.Limit, p.Seed)
	}
	return d, nil
}

// trackedParams are the hyper-parameters, the data's identity and sizes, and o.ExtraParams.
func trackedParams(o Options, d *trainData) map[string]string {
	params := o.Params.flatten()
	params["dataset_manifest_md5"] = d.prep.ManifestMD5
	params["train_images"] = fmt.Sprint(d.train.N)
	params["val_images"] = fmt.Sprint(d.val.N)
	params["test_images"] = fmt.Sprint(d.test.N)
	for k, v := range o.ExtraParams {
		params[k] = v
	}
	return params
}

// learner is the network being trained, its optimiser and learning-rate schedule, and the
// network that is evaluated and saved (the moving average of the weights when enabled).
type learner struct {
	p             Params
	net, evalNet  *model.Network
	opt           *nn.Optimizer
	avg           *ema
	sched         schedule
	stepsPerEpoch int
	step          int
}

// newLearner builds the network and optimiser for trainImages images an epoch. The caller
// closes it.
func newLearner(p Params, trainImages int) (*learner, error) {
	net, err := model.NewNetwork(p.Arch)
	if err != nil {
		return nil, err
	}
	opt, err := nn.NewAdamWConfig(0.9, 0.999, p.WeightDecay).Build(net.VarStore(), p.LR)
	if err != nil {
		net.Close()
		return nil, fmt.Errorf("train: optimizer: %w", err)
	}
	l := &learner{p: p, net: net, evalNet: net, opt: opt}
	if p.EMADecay > 0 {
		if l.avg, err = newEMA(net, p.Arch, p.EMADecay); err != nil {
			net.Close()
			return nil, err
		}
		l.evalNet = l.avg.net
	}
	l.stepsPerEpoch = (trainImages + p.BatchSize - 1) / p.BatchSize
	l.sched = schedule{peak: p.LR, warmup: int(p.WarmupEpochs * float64(l.stepsPerEpoch)), total: p.Epochs * l.stepsPerEpoch}
	return l, nil
}

func (l *learner) close() {
	if l.avg != nil {
		l.avg.close()
	}
	l.net.Close()
}

// epoch trains one epoch, reporting its batches to o.Progress, and scores it on validation.
func (l *learner) epoch(ctx context.Context, o Options, d *trainData, epoch int) (EpochStats, error) {
	p := l.p
	start := time.Now()
	op := fmt.Sprintf("epoch %d/%d", epoch, p.Epochs)
	total := int64(l.stepsPerEpoch)
	o.Progress.Report(progress.Update{Op: op, Total: total})
	lossSum, correct, seen, done := 0.0, 0, 0, int64(0)
	batches, errc := trainBatches(ctx, d.train, p, epoch)
	for b := range batches {
		l.opt.SetLR(l.sched.at(l.step))
		loss, c, err := trainStep(l.net, l.opt, b, p)
		if err != nil {
			return EpochStats{}, err
		}
		if l.avg != nil {
			l.avg.update(l.step)
		}
		lossSum += loss * float64(b.n)
		correct += c
		seen += b.n
		l.step++
		done++
		o.Progress.Report(progress.Update{Op: op, Done: done, Total: total,
			Status: fmt.Sprintf("loss %.3f acc %.3f", lossSum/float64(seen), float64(correct)/float64(seen))})
	}
	o.Progress.Report(progress.Update{Op: op, Done: total, Total: total, Final: true})
	if err := <-errc; err != nil {
		return EpochStats{}, err
	}
	trainSecs := time.Since(start).Seconds()
	val, err := evaluateNet(ctx, l.evalNet, d.val, p.Spec(), p.BatchSize, p.workers(), p.Views(), d.prep.Classes)
	if err != nil {
		return EpochStats{}, err
	}
	return EpochStats{
		Epoch: epoch, TrainLoss: lossSum / float64(seen), TrainAcc: float64(correct) / float64(seen),
		ValLoss: val.Loss, ValAcc: val.Accuracy, LR: l.sched.at(l.step - 1),
		Seconds: time.Since(start).Seconds(), ImagesPS: float64(seen) / trainSecs, RSSBytes: rss(),
	}, nil
}

// finish reloads the best epoch, evaluates it on the test split and writes the rest of the
// model directory: the final model.json with the test metrics, the drift profile (with the
// validation predictions and embeddings), metrics.json, the plots and the manifest.
func (l *learner) finish(ctx context.Context, o Options, d *trainData, res *Result, info model.Info, profile *drift.Profile) error {
	p := l.p
	if err := l.evalNet.Load(filepath.Join(o.OutDir, model.WeightsFile)); err != nil {
		return err
	}
	test, err := evaluateNet(ctx, l.evalNet, d.test, p.Spec(), p.BatchSize, p.workers(), p.Views(), d.prep.Classes)
	if err != nil {
		return err
	}
	res.Test = test
	info.Metrics = test.Metrics("test_")
	info.Metrics["best_val_accuracy"] = res.BestVal
	info.Metrics["best_epoch"] = float64(res.BestEpoch)
	info.CreatedAt = time.Now().UTC().Format(time.RFC3339)
	res.Info = info
	if err := l.evalNet.Save(o.OutDir, info); err != nil {
		return err
	}
	track(ctx, o.Log, "metrics", o.Tracker.LogMetrics(ctx, int64(p.Epochs), info.Metrics))
	valProbs, _, err := predictSplit(ctx, l.evalNet, d.val, p.Spec(), p.BatchSize, p.workers(), p.Views(), len(d.prep.Classes))
	if err != nil {
		return err
	}
	profile.Predictions = predictionProfile("val", d.prep.Classes, valProbs)
	if profile.Embedding, err = embeddingProfile(ctx, l.evalNet, d.val, p); err != nil {
		return err
	}
	if err := writeProfile(o.OutDir, profile); err != nil {
		return err
	}
	return writeOutputs(o.OutDir, o.DataDir, res)
}

func round(v float64) float64 { return math.Round(v*10000) / 10000 }

// track logs a tracker error; tracking never stops training.
func track(ctx context.Context, log *slog.Logger, what string, err error) {
	if err != nil && ctx.Err() == nil {
		log.Warn("tracking failed; training continues", "what", what, "error", err)
	}
}

// trainStep runs forward, loss, backward and the optimiser step on one batch, and returns the
// batch's mean loss and number of correct predictions. Every tensor it creates is dropped.
func trainStep(net *model.Network, opt *nn.Optimizer, b batch, p Params) (float64, int, error) {
	s := int64(p.InputSize)
	x, err := model.Float32Tensor(b.x, []int64{int64(b.n), 3, s, s})
	if err != nil {
		return 0, 0, fmt.Errorf("train: input tensor: %w", err)
	}
	defer x.MustDrop()
	y, err := model.Int64Tensor(b.labels, []int64{int64(b.n)})
	if err != nil {
		return 0, 0, fmt.Errorf("train: label tensor: %w", err)
	}
	defer y.MustDrop()
	logits := net.Forward(x, true)
	defer logits.MustDrop()
	w := ts.NewTensor()
	defer w.MustDrop()
	loss := logits.MustCrossEntropyLoss(y, w, 1, -100, p.LabelSmoothing, false)
	defer loss.MustDrop()
	if err := opt.BackwardStep(loss); err != nil {
		return 0, 0, fmt.Errorf("train: backward: %w", err)
	}
	lv := loss.Float64Values()[0]
	if math.IsNaN(lv) || math.IsInf(lv, 0) {
		return 0, 0, errors.New("train: loss diverged (NaN/Inf): lower lr")
	}
	pred := logits.MustArgmax([]int64{-1}, false, false)
	defer pred.MustDrop()
	eq := pred.MustEqTensor(y, false)
	defer eq.MustDrop()
	n := eq.MustSum(gotch.Int64, false)
	defer n.MustDrop()
	return lv, int(n.Int64Values()[0]), nil
}

// evaluateNet predicts a whole split (no augmentation) and evaluates the predictions.
func evaluateNet(ctx context.Context, net *model.Network, ds *imageprep.Dataset, spec imageprep.Spec, batchSize, workers int, views model.Views, classes []string) (Evaluation, error) {
	probs, labels, err := predictSplit(ctx, net, ds, spec, batchSize, workers, views, len(classes))
	if err != nil {
		return Evaluation{}, err
	}
	return Evaluate(classes, labels, probs)
}

// predictSplit returns the class probabilities (k per image) and labels of a whole split.
func predictSplit(ctx context.Context, net *model.Network, ds *imageprep.Dataset, spec imageprep.Spec, batchSize, workers int, views model.Views, k int) ([][]float32, []int, error) {
	var probs [][]float32
	var labels []int
	batches, errc := evalBatches(ctx, ds, spec, batchSize, workers)
	for b := range batches {
		out, err := net.ProbabilitiesViews(b.x, b.n, spec.Size, views)
		if err != nil {
			return nil, nil, err
		}
		for i := 0; i < b.n; i++ {
			probs = append(probs, out[i*k:(i+1)*k])
			labels = append(labels, int(b.labels[i]))
		}
	}
	if err := <-errc; err != nil {
		return nil, nil, err
	}
	return probs, labels, nil
}

// schedule is a linear warm-up followed by cosine decay to 1% of the peak.
type schedule struct {
	peak          float64
	warmup, total int
}

func (s schedule) at(step int) float64 {
	if s.warmup > 0 && step < s.warmup {
		return s.peak * float64(step+1) / float64(s.warmup)
	}
	span := max(1, s.total-s.warmup)
	t := math.Min(1, float64(step-s.warmup)/float64(span))
	return s.peak * (0.01 + 0.99*0.5*(1+math.Cos(math.Pi*t)))
}

// writeOutputs writes metrics.json, the plots and a copy of the split manifest into dir.
func writeOutputs(dir, dataDir string, res *Result) error {
	b, err := json.MarshalIndent(struct {
		Test      Evaluation   `json:"test"`
		BestEpoch int          `json:"best_epoch"`
		BestVal   float64      `json:"best_val_accuracy"`
		Epochs    []EpochStats `json:"epochs"`
	}{res.Test, res.BestEpoch, res.BestVal, res.Epochs}, "", "  ")
	if err != nil {
		return fmt.Errorf("train: metrics: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, modeldir.Metrics), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := plotConfusion(filepath.Join(dir, modeldir.ConfusionMatrix), res.Test); err != nil {
		return err
	}
	if err := plotCurves(filepath.Join(dir, modeldir.LearningCurves), res.Epochs); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, modeldir.LearningCurvesCSV), curvesCSV(res.Epochs), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	src, err := os.ReadFile(filepath.Join(dataDir, imageprep.ManifestFile))
	if err != nil {
		return fmt.Errorf("train: copy manifest: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, modeldir.Manifest), src, 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
