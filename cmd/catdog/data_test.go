package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// runData executes `catdog data args...` in-process with -C dir and returns stdout.
func runData(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	n := 1 // -C goes right after the (sub)command name
	if args[0] == "remote" {
		n = 2
	}
	full := append([]string{"catdog", "data"}, args[:n]...)
	full = append(full, "-C", dir)
	full = append(full, args[n:]...)
	err := app.RunContext(context.Background(), full)
	return out.String(), err
}

// TestCLIMatchesDVCOutput drives the command tree the way a user does and compares the
// texts users (and scripts) read with what the real dvc prints for the same repository.
func TestCLIMatchesDVCOutput(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) }) // -C changes directory
	dvc := testenv.NewDVC(t)
	dir := t.TempDir()
	testenv.GitInit(t, dir)
	store := filepath.Join(t.TempDir(), "store")
	os.MkdirAll(filepath.Join(dir, "data", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "foo"), []byte("foo"), 0o644)
	os.WriteFile(filepath.Join(dir, "data", "sub", "bar"), []byte("bar"), 0o644)

	steps := []struct {
		args []string
		want string // substring of catdog's output
		dvc  []string
	}{
		{[]string{"init"}, "Initialized DVC repository", nil},
		{[]string{"remote", "add", "-d", "store", store}, "Setting 'store' as a default remote.", nil},
		{[]string{"add", "data"}, "added data (2 files, 6 bytes) -> data.dvc", nil},
		{[]string{"status"}, "Data and pipelines are up to date.\n", []string{"status"}},
		{[]string{"status", "-c"}, "\tnew:                data\n", nil},
		{[]string{"push", "-j", "2"}, "3 files pushed\n", nil},
		{[]string{"status", "-c"}, "Cache and remote 'store' are in sync.\n", []string{"status", "-c"}},
		{[]string{"remote", "list"}, "store\t" + store + "\t(default)\n", nil},
	}
	for _, s := range steps {
		got, err := runData(t, dir, s.args...)
		if err != nil {
			t.Fatalf("data %s: %v\n%s", strings.Join(s.args, " "), err, got)
		}
		if !strings.Contains(got, s.want) {
			t.Fatalf("data %s printed %q, want it to contain %q", strings.Join(s.args, " "), got, s.want)
		}
		if s.dvc != nil {
			if out := dvc.Run(t, dir, s.dvc...); !strings.Contains(out, strings.TrimSpace(got)) {
				t.Errorf("dvc %s printed %q; catdog printed %q", strings.Join(s.dvc, " "), out, got)
			}
		}
	}
	// A modified workspace: same text and JSON as dvc.
	os.WriteFile(filepath.Join(dir, "data", "foo"), []byte("changed"), 0o644)
	got, err := runData(t, dir, "status")
	if err != nil {
		t.Fatal(err)
	}
	want := "data.dvc:\n\tchanged outs:\n\t\tmodified:           data\n"
	if got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	if out := dvc.Run(t, dir, "status"); !strings.Contains(out, strings.TrimSpace(want)) {
		t.Errorf("dvc status = %q", out)
	}
	gotJSON, _ := runData(t, dir, "status", "--json")
	dvcJSON := dvc.Run(t, dir, "status", "--json")
	var a, b any
	if err := json.Unmarshal([]byte(gotJSON), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(dvcJSON), &b); err != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("status --json = %s, dvc says %s (%v)", gotJSON, dvcJSON, err)
	}
	// checkout refuses the unsaved edit, -f restores, then gc -w keeps what is used.
	if _, err := runData(t, dir, "checkout"); err == nil || !strings.Contains(err.Error(), "unsaved") {
		t.Fatalf("checkout over an unsaved edit: %v", err)
	}
	if got, err := runData(t, dir, "checkout", "-f"); err != nil || got != "M       data/\n" {
		t.Fatalf("checkout -f = %q, %v", got, err)
	}
	if got, err := runData(t, dir, "gc", "-w"); err != nil || got != "Removed 0 objects from the cache.\n" {
		t.Fatalf("gc -w = %q, %v", got, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ".dvc", "config"))
	if want := "[core]\n    remote = store\n['remote \"store\"']\n    url = " + store + "\n"; string(cfg) != want {
		t.Errorf(".dvc/config =\n%s\nwant\n%s", cfg, want)
	}
}
