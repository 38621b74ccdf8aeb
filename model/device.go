package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
)

// ErrNoCUDA is returned by ParseDevice for a CUDA device libtorch does not see.
var ErrNoCUDA = errors.New("libtorch sees no CUDA device")

// ParseDevice maps a --device value to a libtorch device: "cpu" (or ""), "cuda" / "cuda:N"
// (an error matching ErrNoCUDA when libtorch does not see that GPU: a CPU-only libtorch
// build, no driver, or fewer GPUs), or "auto" (the first GPU when there is one, else the CPU).
func ParseDevice(s string) (gotch.Device, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch {
	case v == "" || v == "cpu":
		return gotch.CPU, nil
	case v == "auto":
		if gotch.CUDA.IsAvailable() {
			return gotch.CudaBuilder(0), nil
		}
		return gotch.CPU, nil
	case v == "cuda" || strings.HasPrefix(v, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(v, "cuda:"); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 {
				return gotch.CPU, fmt.Errorf("device %q: want cuda:N with N a GPU index", s)
			}
			idx = n
		}
		if !gotch.CUDA.IsAvailable() {
			return gotch.CPU, fmt.Errorf("device %q: %w (torch.cuda.is_available() is false: this libtorch is the CPU build, or no NVIDIA driver/GPU is present); use --device cpu", s, ErrNoCUDA)
		}
		if n := gotch.CUDA.DeviceCount(); int64(idx) >= n {
			return gotch.CPU, fmt.Errorf("device %q: %w with index %d (libtorch sees %d)", s, ErrNoCUDA, idx, n)
		}
		return gotch.CudaBuilder(uint(idx)), nil
	}
	return gotch.CPU, fmt.Errorf("device %q: want cpu, cuda, cuda:N or auto", s)
}
