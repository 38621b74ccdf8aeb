package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/ci/gha"
)

// ghaCommand is `catdog gha`: GitHub Actions helpers for the project's own workflows.
func ghaCommand() *cli.Command {
	return &cli.Command{
		Name:  "gha",
		Usage: "GitHub Actions helpers (annotations and step summaries from tool output)",
		Subcommands: []*cli.Command{{
			Name:      "test-report",
			Usage:     "turn `go test` / `make test` output into ::error annotations (file, line) and a step summary",
			ArgsUsage: "[LOG] (default: standard input)",
			Description: "Reads the plain output of `go test ./...` and annotates each failing test at the file and line of\n" +
				"its first message (at most 10 annotations per step; all failures are in the summary). Exits 1 when\n" +
				"a test or package failed. Outside GitHub Actions it prints the failures plainly.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "module", Usage: "module path (default: read from ./go.mod)"},
			},
			Action: runGHATestReport,
		}},
	}
}

func runGHATestReport(c *cli.Context) error {
	a := actions(c)
	var in io.Reader = os.Stdin
	if c.NArg() > 0 {
		f, err := os.Open(c.Args().First())
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	module := c.String("module")
	if module == "" {
		module = moduleFromGoMod("go.mod")
	}
	rep, err := gha.ParseGoTest(in, module)
	if err != nil {
		return err
	}
	if err := a.ReportTests(rep); err != nil {
		return err
	}
	if rep.Failed() {
		return cli.Exit(fmt.Sprintf("catdog gha test-report: %d failures", len(rep.Failures)), 1)
	}
	return nil
}

func moduleFromGoMod(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`)
		}
	}
	return ""
}
