package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/catdog-mlops/catdog/imageprep"

	"github.com/catdog-mlops/catdog/internal/atomicfile"

	"github.com/catdog-mlops/catdog/model/modeldir"
)

// File names inside a model directory (the full contract is package modeldir).
const (
	WeightsFile = modeldir.Weights
	InfoFile    = modeldir.Info
)

// Info is the content of model.json: everything needed to rebuild the network and feed it.
type Info struct {
	Name               string             `json:"name"`
	Arch               Arch               `json:"arch"`
	InputSize          int                `json:"input_size"`
	Mean               [3]float32         `json:"mean"`
	Std                [3]float32         `json:"std"`
	Classes            []string           `json:"classes"`
	DatasetManifestMD5 string             `json:"dataset_manifest_md5,omitempty"`
	Metrics            map[string]float64 `json:"metrics,omitempty"`
	CreatedAt          string             `json:"created_at,omitempty"`
	CatdogVersion      string             `json:"catdog_version,omitempty"`
	Epoch              int                `json:"epoch,omitempty"`
	// TTA averages the probabilities of the image and its mirror image.
	TTA bool `json:"tta"`
	// TTACrops adds centre crops to the test-time views: each is that fraction of the side,
	// resized back to the input size (mirrored too with TTA). Empty: the whole image only.
	TTACrops []float64 `json:"tta_crops,omitempty"`
}

// Views are the test-time views whose probabilities Probabilities averages.
type Views struct {
	// Flip adds the mirror image of every view.
	Flip bool
	// Crops are centre crops (fractions of the side in (0, 1)) resized back to the input size,
	// added to the whole image.
	Crops []float64
}

// Views returns the test-time views the model was trained to be evaluated with.
func (i Info) Views() Views { return Views{Flip: i.TTA, Crops: i.TTACrops} }

// Count is the number of views per image.
func (v Views) Count() int {
	n := 1 + len(v.Crops)
	if v.Flip {
		n *= 2
	}
	return n
}

// Validate reports a crop fraction outside (0, 1).
func (v Views) Validate() error {
	for _, c := range v.Crops {
		if !(c > 0 && c < 1) {
			return fmt.Errorf("model: tta crop %v out of (0,1)", c)
		}
	}
	return nil
}

// Spec returns the preprocessing specification the model expects.
func (i Info) Spec() imageprep.Spec {
	return imageprep.Spec{Size: i.InputSize, Mean: i.Mean, Std: i.Std}
}

// Validate checks that the info describes a model this build can run.
func (i Info) Validate() error {
	if err := i.Arch.Validate(); err != nil {
		return err
	}
	if i.InputSize < 16 || i.InputSize > 1024 {
		return fmt.Errorf("model: input_size %d out of range [16,1024]", i.InputSize)
	}
	if int64(len(i.Classes)) != i.Arch.Classes {
		return fmt.Errorf("model: %d class names for %d outputs", len(i.Classes), i.Arch.Classes)
	}
	for c, s := range i.Std {
		if s == 0 {
			return fmt.Errorf("model: std[%d] is zero", c)
		}
	}
	return i.Views().Validate()
}

// Network is a trainable CNN bound to its VarStore.
type Network struct {
	vs   *nn.VarStore
	arch Arch
	net  layers
}

// layers is what every architecture provides: logits, the penultimate layer and the head.
type layers interface {
	// forward returns logits for x (N x 3 x S x S); x is not dropped.
	forward(x *ts.Tensor, train bool) *ts.Tensor
	// features returns the globally pooled activations the head reads (N x last width).
	features(x *ts.Tensor, train bool) *ts.Tensor
	// linear is the head.
	linear() *nn.Linear
}

// build creates the layers of a (validated) architecture under root.
func build(root *nn.Path, a Arch) layers {
	if a.Name == ArchResNet {
		return newResNet(root, a)
	}
	return newNet(root, a)
}

// NewNetwork builds a freshly initialised network on the CPU.
func NewNetwork(a Arch) (*Network, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	vs := nn.NewVarStore(gotch.CPU)
	return &Network{vs: vs, arch: a, net: build(vs.Root(), a)}, nil
}

// VarStore exposes the weights, for optimisers.
func (n *Network) VarStore() *nn.VarStore { return n.vs }

// Forward returns the logits for x (N x 3 x S x S); x is not dropped. In training mode batch
// norm updates its running statistics and dropout is active.
func (n *Network) Forward(x *ts.Tensor, train bool) *ts.Tensor { return n.net.forward(x, train) }

// Save writes the weights and info into dir (created if needed), each through
// internal/atomicfile (unique temp name, fsync, rename; the temp file removed on error).
func (n *Network) Save(dir string, info Info) error {
	if err := info.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	// gotch saves by path: it writes a reserved temp name, committed (fsync, rename) after.
	w, err := atomicfile.Reserve(filepath.Join(dir, WeightsFile))
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	defer w.Abort()
	if err := n.vs.Save(w.Path()); err != nil {
		return fmt.Errorf("model: save weights: %w", err)
	}
	if err := w.Commit(0o644); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("model: encode info: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, InfoFile), append(b, '\n'))
}

// Load reads weights saved by Save into this network. Every variable must be present with
// its shape. (gotch's VarStore.Load does the same but then sleeps a second in ts.CleanUp,
// which would dominate the service's cold start.)
func (n *Network) Load(path string) error {
	// libtorch reports an error through a per-OS-thread slot that gotch reads in a second cgo
	// call: locked, a failed load's error is read (and cleared) on the thread that set it, not
	// left behind for the next, unrelated call on that thread.
	runtime.LockOSThread()
	named, err := ts.LoadMultiWithDevice(path, gotch.CPU)
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("model: load weights %s: %w", path, err)
	}
	defer func() {
		for _, t := range named {
			t.Tensor.MustDrop()
		}
	}()
	byName := make(map[string]*ts.Tensor, len(named))
	for _, t := range named {
		byName[t.Name] = t.Tensor
	}
	vars := n.vs.Variables()
	if len(byName) != len(vars) {
		return fmt.Errorf("model: %s holds %d tensors, the network has %d", path, len(byName), len(vars))
	}
	for name, v := range vars {
		src, ok := byName[name]
		if !ok {
			return fmt.Errorf("model: %s lacks variable %q", path, name)
		}
		if got, want := src.MustSize(), v.MustSize(); !slices.Equal(got, want) {
			return fmt.Errorf("model: %s: variable %q has shape %v, the network %v", path, name, got, want)
		}
	}
	NoGrad(func() {
		for name, v := range vars {
			v.Copy_(byName[name])
		}
	})
	return nil
}

// Close releases the network's tensors.
func (n *Network) Close() { n.vs.Destroy() }

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

// ReadInfo reads and validates dir/model.json.
func ReadInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return info, fmt.Errorf("model: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("model: %s: %w", filepath.Join(dir, InfoFile), err)
	}
	if err := info.Validate(); err != nil {
		return info, fmt.Errorf("model: %s: %w", filepath.Join(dir, InfoFile), err)
	}
	return info, nil
}

// Model is a loaded model ready for inference.
type Model struct {
	info Info
	net  *Network

	mu     sync.RWMutex // guards closed against Predict
	closed bool
}

// ErrClosed is returned by Predict after Close.
var ErrClosed = errors.New("model: closed")

// Load reads a model directory written by Network.Save (model.json + best_model.ot).
func Load(dir string) (*Model, error) {
	info, err := ReadInfo(dir)
	if err != nil {
		return nil, err
	}
	n, err := NewNetwork(info.Arch)
	if err != nil {
		return nil, err
	}
	if err := n.Load(filepath.Join(dir, WeightsFile)); err != nil {
		n.Close()
		return nil, err
	}
	return &Model{info: info, net: n}, nil
}

// Info returns the model's model.json content.
func (m *Model) Info() Info { return m.info }

// Spec returns the preprocessing specification the model expects.
func (m *Model) Spec() imageprep.Spec { return m.info.Spec() }

// Predict runs a no-grad forward pass on n images (x holds n*3*S*S normalised CHW floats) and
// returns n rows of class probabilities ordered as Info().Classes. It is safe for concurrent use.
func (m *Model) Predict(x []float32, n int) ([][]float32, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	s := m.info.InputSize
	if n <= 0 || len(x) != n*3*s*s {
		return nil, fmt.Errorf("model: predict: got %d floats for %d images of 3x%dx%d", len(x), n, s, s)
	}
	probs, err := m.net.ProbabilitiesViews(x, n, s, m.info.Views())
	if err != nil {
		return nil, err
	}
	c := len(m.info.Classes)
	out := make([][]float32, n)
	for i := range out {
		out[i] = probs[i*c : (i+1)*c : (i+1)*c]
	}
	return out, nil
}

// Probabilities runs the network in evaluation mode without gradients on count images of size
// s and returns the softmax outputs, row-major (count x classes). With tta the output is the
// mean of the probabilities for the images and their horizontal mirrors.
func (n *Network) Probabilities(x []float32, count, s int, tta bool) ([]float32, error) {
	return n.ProbabilitiesViews(x, count, s, Views{Flip: tta})
}

// ProbabilitiesViews is Probabilities averaged over the test-time views v: the image, its
// centre crops resized back to s, and with v.Flip the mirror of each. All views go through one
// forward pass (a batch of count x v.Count()): on a multi-threaded CPU backend one large batch
// keeps the threads busier than several small ones.
func (n *Network) ProbabilitiesViews(x []float32, count, s int, v Views) ([]float32, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	var (
		out []float32
		err error
	)
	NoGrad(func() {
		in, e := Float32Tensor(x, []int64{int64(count), 3, int64(s), int64(s)})
		if e != nil {
			err = fmt.Errorf("model: input tensor: %w", e)
			return
		}
		views := []*ts.Tensor{in}
		for _, c := range v.Crops {
			views = append(views, centreCrop(in, c, int64(s)))
		}
		if v.Flip {
			for _, t := range views {
				views = append(views, t.MustFlip([]int64{3}, false))
			}
		}
		var p *ts.Tensor
		if len(views) == 1 {
			p = n.Forward(in, false).MustSoftmax(-1, gotch.Float, true)
		} else {
			all := ts.MustCat(views, 0)
			probs := n.Forward(all, false).MustSoftmax(-1, gotch.Float, true)
			all.MustDrop()
			// (views x count x classes) -> mean over the views.
			byView := probs.MustView([]int64{int64(len(views)), int64(count), n.arch.Classes}, true)
			p = byView.MustMeanDim([]int64{0}, false, gotch.Float, true)
		}
		for _, t := range views {
			t.MustDrop()
		}
		out = make([]float32, count*int(n.arch.Classes))
		e = p.CopyData(out, uint(len(out)))
		p.MustDrop()
		if e != nil {
			err = fmt.Errorf("model: read output: %w", e)
		}
	})
	return out, err
}

// centreCrop returns the centre frac x frac of x (N x 3 x s x s) resized back to s x s
// (bilinear, half-pixel centres as in the rest of the pipeline). x is not dropped.
func centreCrop(x *ts.Tensor, frac float64, s int64) *ts.Tensor {
	k := max(1, int64(math.Round(frac*float64(s))))
	o := (s - k) / 2
	h := x.MustNarrow(2, o, k, false)
	w := h.MustNarrow(3, o, k, true)
	return w.MustUpsampleBilinear2d([]int64{s, s}, false, nil, nil, true)
}

// EmbeddingDim is the width of the penultimate layer Embeddings returns.
func (n *Network) EmbeddingDim() int { return int(n.arch.Widths[len(n.arch.Widths)-1]) }

// Embeddings runs the network in evaluation mode without gradients on count images of size s
// and returns their penultimate-layer activations (the pooled features the linear head reads),
// row-major (count x EmbeddingDim).
func (n *Network) Embeddings(x []float32, count, s int) ([]float32, error) {
	var (
		out []float32
		err error
	)
	NoGrad(func() {
		in, e := Float32Tensor(x, []int64{int64(count), 3, int64(s), int64(s)})
		if e != nil {
			err = fmt.Errorf("model: input tensor: %w", e)
			return
		}
		f := n.net.features(in, false)
		in.MustDrop()
		out = make([]float32, count*n.EmbeddingDim())
		e = f.CopyData(out, uint(len(out)))
		f.MustDrop()
		if e != nil {
			err = fmt.Errorf("model: read embeddings: %w", e)
		}
	})
	return out, err
}

// Close releases the model's tensors; Predict fails with ErrClosed afterwards.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		m.net.Close()
	}
}

// NoGrad runs fn with gradient tracking off, then turns it back on. Grad mode is thread-local
// in libtorch, so the goroutine is locked to its OS thread for the duration. (gotch v0.9.1's
// GradSetEnabled reads its C int result through an 8-byte pointer, so the "previous state" it
// returns is unreliable: grad mode is always restored to on, the mode training needs.)
func NoGrad(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts.MustGradSetEnabled(false)
	defer ts.MustGradSetEnabled(true)
	fn()
}
