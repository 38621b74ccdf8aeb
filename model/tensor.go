package model

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// WithFloatScalar runs fn with a libtorch scalar holding v, and keeps the scalar alive until fn
// returns. gotch frees a Scalar's C memory from a GC finalizer (its Drop does nothing), and a
// Go value nothing uses after a cgo call has started may be finalized during that call: the
// scalar would be freed while libtorch reads it (seen once in the e2e load test as
// "s.isIntegral(false) INTERNAL ASSERT FAILED" in DivScalar).
func WithFloatScalar(v float64, fn func(*ts.Scalar)) {
	s := ts.FloatScalar(v)
	fn(s)
	runtime.KeepAlive(s)
}

// Float32Tensor copies x into a new CPU float32 tensor of the given shape with one memcpy.
// (gotch's NewTensorFromData walks the slice through reflection and encoding/binary, which
// costs about as much as a training step's forward pass for a 32x3x224x224 batch.)
func Float32Tensor(x []float32, shape []int64) (*ts.Tensor, error) {
	return tensorOf(unsafe.Pointer(unsafe.SliceData(x)), len(x), 4, gotch.Float, shape)
}

// Int64Tensor copies x into a new CPU int64 tensor of the given shape.
func Int64Tensor(x []int64, shape []int64) (*ts.Tensor, error) {
	return tensorOf(unsafe.Pointer(unsafe.SliceData(x)), len(x), 8, gotch.Int64, shape)
}

func tensorOf(p unsafe.Pointer, n int, size uint, dtype gotch.DType, shape []int64) (*ts.Tensor, error) {
	want := int64(1)
	for _, d := range shape {
		want *= d
	}
	if len(shape) == 0 || int64(n) != want || n == 0 {
		return nil, fmt.Errorf("model: %d values for shape %v", n, shape)
	}
	// at_tensor_of_data copies the n*size bytes at p before returning, so passing Go memory
	// for the duration of the call is allowed by the cgo pointer rules.
	c := lib.AtTensorOfData(p, shape, uint(len(shape)), size, int(dtype.CKind()))
	if err := ts.TorchErr(); err != nil {
		return nil, fmt.Errorf("model: tensor from data: %w", err)
	}
	return ts.New(c), nil
}
