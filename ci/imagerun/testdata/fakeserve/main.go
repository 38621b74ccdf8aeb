// Command fakeserve stands in for `catdog serve` in imagerun's tests: same flags, same
// endpoints, and it proves what the process sees inside the image.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: catdog serve --model DIR --addr ADDR")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	model := fs.String("model", "", "model dir")
	addr := fs.String("addr", ":8080", "listen address")
	_ = fs.Parse(os.Args[2:])
	info, err := os.ReadFile(filepath.Join(*model, "model.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ready")) })
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		tmpErr := ""
		if f, err := os.CreateTemp("/tmp", "x"); err != nil {
			tmpErr = err.Error()
		} else {
			f.Close()
		}
		_, rootErr := os.ReadDir("/root")
		rnd := make([]byte, 8)
		f, urandomErr := os.Open("/dev/urandom")
		if urandomErr == nil {
			_, urandomErr = f.Read(rnd)
			f.Close()
		}
		_, procErr := os.ReadFile("/proc/self/status")
		json.NewEncoder(w).Encode(map[string]any{
			"uid": os.Getuid(), "gid": os.Getgid(), "wd": wd, "ld": os.Getenv("LD_LIBRARY_PATH"),
			"tmp_error": tmpErr, "root_readable": rootErr == nil, "model": string(info),
			"urandom_ok": urandomErr == nil, "proc_ok": procErr == nil,
		})
	})
	mux.HandleFunc("/predict", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"label": "cat", "confidence": 0.75, "probabilities": map[string]float64{"cat": 0.75, "dog": 0.25},
		})
	})
	if err := http.ListenAndServe(*addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
