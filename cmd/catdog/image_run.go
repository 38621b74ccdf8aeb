package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/catdog-mlops/catdog/ci/imagerun"
	"github.com/catdog-mlops/catdog/ci/publish"
)

// maxSampleBytes bounds the photo posted to /predict.
const maxSampleBytes = 10 << 20

func imageRunCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "smoke-test an image: extract its root file system, start `catdog serve` under chroot, check /health, /ready and /predict",
		Description: "No container engine is needed, but chroot needs root. The server listens on 127.0.0.1:--port\n" +
			"(its --addr argument is replaced); the job fails when an endpoint does not answer as expected.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "image reference to pull (tag or @sha256 digest)"},
			layoutFlag(false),
			layoutTagFlag(),
			&cli.StringFlag{Name: "sample", Usage: "photo to POST to /predict (default: a generated 256x256 JPEG)", EnvVars: []string{"CATDOG_SMOKE_SAMPLE"}},
			&cli.IntFlag{Name: "port", Usage: "port on 127.0.0.1 (default: a free one)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "how long the server may take to become ready and answer"},
			&cli.StringFlag{Name: "rootfs", Usage: "extract here and keep it (default: a temp dir removed afterwards)"},
			&cli.BoolFlag{Name: "keep-running", Usage: "leave the server running until interrupted after the smoke test passes"},
		},
		Action: runImageRun,
	}
}

func runImageRun(c *cli.Context) error {
	a := actions(c)
	img, err := runSource(c)
	if err != nil {
		return fail(a, "image run", err)
	}
	sample, err := smokeSample(c.String("sample"))
	if err != nil {
		return fail(a, "image run", err)
	}
	rootfs := c.String("rootfs")
	if rootfs == "" {
		tmp, err := os.MkdirTemp("", "catdog-rootfs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		rootfs = filepath.Join(tmp, "rootfs")
	}
	end := a.Group("Extract image")
	start := time.Now()
	err = imagerun.Extract(c.Context, img, rootfs)
	end()
	if err != nil {
		return fail(a, "image run", err)
	}
	fmt.Fprintf(c.App.Writer, "extracted into %s in %.1fs\n", rootfs, time.Since(start).Seconds())
	cf, err := img.ConfigFile()
	if err != nil {
		return fail(a, "image run", err)
	}
	port := c.Int("port")
	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	end = a.Group("Server output")
	proc, err := imagerun.Start(rootfs, cf.Config, imagerun.StartOptions{
		Args: withAddr(cf.Config.Cmd, addr), Stdout: c.App.ErrWriter, Stderr: c.App.ErrWriter,
	})
	if err != nil {
		end()
		return fail(a, "image run", err)
	}
	defer proc.Close()
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	res, err := imagerun.Smoke(ctx, "http://"+addr, sample, proc.Done())
	end()
	if err != nil {
		return fail(a, "image smoke test", err)
	}
	fmt.Fprintf(c.App.Writer, "smoke test passed: ready after %.1fs, /predict %s -> %s (%.3f)\n",
		res.ReadyAfter.Seconds(), sampleName(c.String("sample")), res.Prediction.Label, res.Prediction.Confidence)
	if err := a.SetOutput("label", res.Prediction.Label); err != nil {
		return err
	}
	if a.Enabled() {
		if err := a.AppendSummary(fmt.Sprintf("### catdog smoke test\n\nReady after %.1f s; `/predict` answered **%s** (%.3f).\n",
			res.ReadyAfter.Seconds(), res.Prediction.Label, res.Prediction.Confidence)); err != nil {
			return err
		}
	}
	if c.Bool("keep-running") {
		fmt.Fprintf(c.App.Writer, "serving on http://%s until interrupted\n", addr)
		select {
		case <-c.Context.Done():
		case <-proc.Done():
		}
	}
	return nil
}

func runSource(c *cli.Context) (v1.Image, error) {
	switch ref, dir := c.String("image"), c.String("oci-layout"); {
	case ref != "" && dir != "":
		return nil, cli.Exit("catdog image run: give --image or --oci-layout, not both", 2)
	case ref != "":
		return publish.Pull(c.Context, ref)
	case dir != "":
		return publish.ReadLayout(dir, c.String("layout-tag"))
	default:
		return nil, cli.Exit("catdog image run: --image or --oci-layout is required", 2)
	}
}

// withAddr returns args with the value of --addr replaced (or added).
func withAddr(args []string, addr string) []string {
	out := append([]string{}, args...)
	for i, a := range out {
		if a == "--addr" && i+1 < len(out) {
			out[i+1] = addr
			return out
		}
		if len(a) > 7 && a[:7] == "--addr=" {
			out[i] = "--addr=" + addr
			return out
		}
	}
	return append(out, "--addr", addr)
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// smokeSample reads the photo at path, or generates a JPEG when path is empty.
func smokeSample(path string) ([]byte, error) {
	if path != "" {
		return readBounded(path, maxSampleBytes)
	}
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			img.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: uint8((x + y) / 2), A: 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sampleName(path string) string {
	if path == "" {
		return "generated.jpg"
	}
	return filepath.Base(path)
}
