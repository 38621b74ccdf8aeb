package main

import (
	"reflect"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/model/modeldir"
)

// Flags that several commands take are declared here once, with one help text and one
// environment variable.

// modelDirFlag is --model for commands that read a local model directory.
func modelDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "model", Value: "models", Usage: "model directory (" + modeldir.Info + ", " + modeldir.Weights + ", ...)",
		EnvVars: []string{"CATDOG_MODEL", "CATDOG_MODEL_DIR"}}
}

// modelRefFlag is --model for commands that also resolve models:/NAME@ALIAS from the registry.
func modelRefFlag() cli.Flag {
	return &cli.StringFlag{Name: "model", Required: true, Usage: "model directory or models:/NAME@ALIAS (models:/NAME/VERSION)",
		EnvVars: []string{"CATDOG_MODEL", "CATDOG_MODEL_DIR"}}
}

// preparedFlag is --data for the commands that read prepared data (train, sweep, model
// promote): the folder `catdog prepare` writes.
func preparedFlag() cli.Flag {
	return &cli.StringFlag{Name: "data", Value: "data/prepared", Usage: "folder written by `catdog prepare` (its manifest fixes the splits)",
		EnvVars: []string{"CATDOG_PREPARED"}}
}

// paramsFlag is --params, the parameter file, with one help text for every command that reads
// it; each reads its own part. def is the default: "params.yaml" where an unset flag still
// reads the working directory's file (train, sweep, model promote), "" where an unset flag
// means the built-in values (serve, drift).
func paramsFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "params", Value: def,
		Usage:   "parameter file (YAML, laid out like the repository's params.yaml); each command reads its own part: the hyper-parameters (train, sweep), promote: (model promote), drift: (serve, drift)",
		EnvVars: []string{"CATDOG_PARAMS"}}
}

// quietFlag is --quiet/-q: no progress output (a per-invocation switch: no environment variable).
func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"}
}

// bindEnv gives every flag that takes a value and declares no environment variable of its own
// the variable CATDOG_<COMMAND>_<FLAG> (COMMAND is the top-level command), so that every such
// flag can be set from the environment, as --help shows. Boolean switches are per invocation
// and get none.
func bindEnv(app *cli.App) {
	set := func(prefix string, flags []cli.Flag) {
		for _, f := range flags {
			if _, isBool := f.(*cli.BoolFlag); isBool {
				continue
			}
			v := reflect.ValueOf(f)
			if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
				continue
			}
			ev := v.Elem().FieldByName("EnvVars")
			if !ev.IsValid() || !ev.CanSet() || ev.Len() > 0 {
				continue
			}
			ev.Set(reflect.ValueOf([]string{envName(prefix, f.Names()[0])}))
		}
	}
	set("CATDOG", app.Flags)
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			set(prefix, c.Flags)
			walk(prefix, c.Subcommands)
		}
	}
	for _, c := range app.Commands {
		p := envName("CATDOG", c.Name)
		set(p, c.Flags)
		walk(p, c.Subcommands)
	}
}

func envName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}
