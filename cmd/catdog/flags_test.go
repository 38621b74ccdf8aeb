package main

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryValueFlagHasAnEnvFallback walks the whole command tree and enforces the rule the
// README states: every flag that takes a value can also be set from the environment (its
// tool's standard variable, a CATDOG_* name it declares, or CATDOG_<COMMAND>_<FLAG>); boolean
// switches (--json, --force, --quiet, …) are per invocation and have none. One variable never
// sets two different flags, except where one command's output is the next one's input: the
// prepared folder (prepare --out, train --data), the model directory (train --out, --model
// elsewhere), the model's name (train --name, k8s --model-name) and version (model promote
// --version, k8s --model-version).
func TestEveryValueFlagHasAnEnvFallback(t *testing.T) {
	app := newApp()
	users := map[string]map[string]bool{} // env var -> flag names
	n := 0
	var walk func(path string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(path string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			name := f.Names()[0]
			ev, _ := f.(interface{ GetEnvVars() []string })
			if _, isBool := f.(*cli.BoolFlag); isBool {
				continue
			}
			n++
			if ev == nil || len(ev.GetEnvVars()) == 0 {
				t.Errorf("%s --%s takes a value but has no environment variable", path, name)
				continue
			}
			for _, e := range ev.GetEnvVars() {
				if users[e] == nil {
					users[e] = map[string]bool{}
				}
				users[e][name] = true
			}
		}
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Flags, c.Subcommands)
		}
	}
	walk(app.Name, app.Flags, app.Commands)
	if n < 50 {
		t.Fatalf("walked only %d value flags: the walk is broken", n)
	}
	allowed := map[string]string{"CATDOG_MODEL_DIR": "model,out", "CATDOG_PREPARED": "data,out", "CATDOG_MODEL_NAME": "model-name,name", "CATDOG_MODEL_VERSION": "model-version,version"}
	for e, names := range users {
		if len(names) < 2 {
			continue
		}
		var ns []string
		for k := range names {
			ns = append(ns, k)
		}
		sort.Strings(ns)
		if got := strings.Join(ns, ","); allowed[e] != got {
			t.Errorf("$%s sets different flags: %s", e, got)
		}
	}
}

// TestEnvSetsFlag: a derived variable really sets its flag (urfave/cli reads it at parse time).
func TestEnvSetsFlag(t *testing.T) {
	app := newApp()
	var got string
	for _, c := range app.Commands {
		if c.Name == "gha" {
			for _, s := range c.Subcommands {
				if s.Name == "test-report" {
					s.Action = func(c *cli.Context) error { got = c.String("module"); return nil }
				}
			}
		}
	}
	t.Setenv("CATDOG_GHA_MODULE", "example.com/from-env")
	if err := app.Run([]string{"catdog", "gha", "test-report", os.DevNull}); err != nil {
		t.Fatal(err)
	}
	if got != "example.com/from-env" {
		t.Fatalf("--module = %q, want the value of $CATDOG_GHA_MODULE", got)
	}
}
