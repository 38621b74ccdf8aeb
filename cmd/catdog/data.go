package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/dvcfmt/repo"
)

// dataCommand is `catdog data ...`: DVC-compatible data versioning (dvcfmt/repo). Output goes
// to the app's Writer, progress and notes to its ErrWriter.
func dataCommand() *cli.Command {
	cwd := &cli.StringFlag{Name: "cwd", Aliases: []string{"C"}, Usage: "run as if started in `DIR`"}
	jobs := &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "parallel transfers (default 4 x CPUs)"}
	rem := &cli.StringFlag{Name: "remote", Aliases: []string{"r"}, Usage: "remote `NAME` (default core.remote)"}
	force := &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "overwrite or delete unsaved workspace files"}
	common := []cli.Flag{cwd, quietFlag()}
	transfer := append([]cli.Flag{jobs, rem}, common...)
	return &cli.Command{
		Name:  "data",
		Usage: "version data with DVC's formats (interoperable with the dvc CLI)",
		Subcommands: []*cli.Command{
			{Name: "init", Usage: "create .dvc/ like `dvc init`", Flags: append([]cli.Flag{
				&cli.BoolFlag{Name: "no-scm", Usage: "initialise outside a git repository"}, force}, common...),
				Action: dataInit},
			{Name: "add", Usage: "track files or directories", ArgsUsage: "PATH...", Flags: common, Action: dataAdd},
			{Name: "status", Usage: "workspace vs cache, or cache vs remote with -c", ArgsUsage: "[TARGET...]",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "cloud", Aliases: []string{"c"}, Usage: "compare the cache with a remote"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON like `dvc status --json`"},
				}, transfer...), Action: dataStatus},
			{Name: "checkout", Usage: "restore tracked data from the cache", ArgsUsage: "[TARGET...]",
				Flags: append([]cli.Flag{force}, common...), Action: dataCheckout},
			{Name: "push", Usage: "upload cached objects to a remote", ArgsUsage: "[TARGET...]", Flags: transfer, Action: dataPush},
			{Name: "fetch", Usage: "download objects from a remote into the cache", ArgsUsage: "[TARGET...]", Flags: transfer, Action: dataFetch},
			{Name: "pull", Usage: "fetch, then checkout", ArgsUsage: "[TARGET...]", Flags: append([]cli.Flag{force}, transfer...), Action: dataPull},
			{Name: "gc", Usage: "remove cache objects no .dvc file of the workspace uses", Flags: append([]cli.Flag{
				&cli.BoolFlag{Name: "workspace", Aliases: []string{"w"}, Usage: "keep only what the workspace uses (required, as in dvc)"}}, common...),
				Action: dataGC},
			{Name: "remote", Usage: "manage remotes in .dvc/config", Subcommands: []*cli.Command{
				{Name: "add", ArgsUsage: "NAME URL", Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "default", Aliases: []string{"d"}, Usage: "also set core.remote"},
					&cli.BoolFlag{Name: "local", Usage: "write .dvc/config.local"}, force}, common...), Action: dataRemoteAdd},
				{Name: "modify", ArgsUsage: "NAME OPTION VALUE", Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "local", Usage: "write .dvc/config.local"}, &cli.BoolFlag{Name: "unset", Usage: "remove OPTION"}}, common...), Action: dataRemoteModify},
				{Name: "list", Flags: common, Action: dataRemoteList},
				{Name: "default", ArgsUsage: "[NAME]", Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "local", Usage: "write .dvc/config.local"}}, common...), Action: dataRemoteDefault},
			}},
		},
	}
}

func dataOpts(c *cli.Context) []repo.Option {
	w := c.App.ErrWriter
	opts := []repo.Option{repo.WithLogf(func(f string, a ...any) { fmt.Fprintf(w, f+"\n", a...) })}
	return append(opts, repo.WithProgress(newProgress(w, c.Bool("quiet"), dataLines)))
}

func dataDir(c *cli.Context) string {
	if d := c.String("cwd"); d != "" {
		return d
	}
	return "."
}

func openRepo(c *cli.Context) (*repo.Repo, error) {
	if d := c.String("cwd"); d != "" {
		if err := os.Chdir(d); err != nil {
			return nil, err
		}
	}
	return repo.Find(".", dataOpts(c)...)
}

func transferOpts(c *cli.Context) repo.TransferOptions {
	return repo.TransferOptions{Remote: c.String("remote"), Jobs: c.Int("jobs"), Targets: c.Args().Slice(), Force: c.Bool("force")}
}

func dataInit(c *cli.Context) error {
	r, err := repo.Init(dataDir(c), repo.InitOptions{NoSCM: c.Bool("no-scm"), Force: c.Bool("force")}, dataOpts(c)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "Initialized DVC repository in %s.\n", r.Root)
	return nil
}

func dataAdd(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.Exit("give at least one PATH", 2)
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Add(c.Context, c.Args().Slice())
	for _, a := range res {
		kind := "file"
		if a.Out.IsDir() {
			kind = fmt.Sprintf("%d files", a.Out.NFiles)
		}
		fmt.Fprintf(c.App.Writer, "added %s (%s, %d bytes) -> %s\n", a.Out.Path, kind, a.Out.Size, relToCwd(a.DVCFile))
	}
	return err
}

func relToCwd(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, ok := strings.CutPrefix(p, wd+string(os.PathSeparator)); ok {
			return rel
		}
	}
	return p
}

func dataStatus(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("cloud") {
		res, name, err := r.CloudStatus(c.Context, transferOpts(c))
		if err != nil {
			return err
		}
		return printCloudStatus(w, res, name, c.Bool("json"))
	}
	res, err := r.Status(c.Context, c.Args().Slice())
	if err != nil {
		return err
	}
	return printStatus(w, res, c.Bool("json"))
}

// printStatus prints like `dvc status` (or --json).
func printStatus(w io.Writer, res []repo.OutStatus, asJSON bool) error {
	byFile := map[string]map[string]string{}
	var files []string
	for _, s := range res {
		if byFile[s.DVCFile] == nil {
			byFile[s.DVCFile] = map[string]string{}
			files = append(files, s.DVCFile)
		}
		byFile[s.DVCFile][s.Path] = s.Status
	}
	sort.Strings(files)
	if asJSON {
		out := map[string][]map[string]map[string]string{}
		for _, f := range files {
			out[f] = []map[string]map[string]string{{"changed outs": byFile[f]}}
		}
		return json.NewEncoder(w).Encode(out)
	}
	if len(files) == 0 {
		fmt.Fprintln(w, "Data and pipelines are up to date.")
		return nil
	}
	for _, f := range files {
		fmt.Fprintf(w, "%s:\n\tchanged outs:\n", f)
		paths := make([]string, 0, len(byFile[f]))
		for p := range byFile[f] {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(w, "\t\t%-20s%s\n", byFile[f][p]+":", p)
		}
	}
	return nil
}

func printCloudStatus(w io.Writer, res []repo.CloudStatus, remote string, asJSON bool) error {
	if asJSON {
		out := map[string]string{}
		for _, s := range res {
			out[s.Name] = s.Status
		}
		return json.NewEncoder(w).Encode(out)
	}
	if len(res) == 0 {
		fmt.Fprintf(w, "Cache and remote '%s' are in sync.\n", remote)
		return nil
	}
	for _, s := range res {
		fmt.Fprintf(w, "\t%-20s%s\n", s.Status+":", s.Name)
	}
	return nil
}

func dataCheckout(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Checkout(c.Context, c.Args().Slice(), c.Bool("force"))
	printCheckout(c.App.Writer, res)
	return err
}

func printCheckout(w io.Writer, res *repo.CheckoutResult) {
	if res == nil {
		return
	}
	for _, n := range res.Added {
		fmt.Fprintf(w, "A       %s\n", n)
	}
	for _, n := range res.Modified {
		fmt.Fprintf(w, "M       %s\n", n)
	}
}

func dataPush(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Push(c.Context, transferOpts(c))
	if res != nil {
		fmt.Fprintf(c.App.Writer, "%d files pushed\n", res.Transferred)
	}
	return err
}

func dataFetch(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Fetch(c.Context, transferOpts(c))
	if res != nil {
		fmt.Fprintf(c.App.Writer, "%d files fetched\n", res.Transferred)
	}
	return err
}

func dataPull(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	res, err := r.Pull(c.Context, transferOpts(c))
	if res != nil {
		if res.Fetched != nil {
			fmt.Fprintf(c.App.Writer, "%d files fetched\n", res.Fetched.Transferred)
		}
		printCheckout(c.App.Writer, res.Checkout)
	}
	return err
}

func configLevel(c *cli.Context, r *repo.Repo) (*dvcfmt.Config, bool, error) {
	local := c.Bool("local")
	cfg, err := r.ReadConfig(local)
	return cfg, local, err
}

func dataRemoteAdd(c *cli.Context) error {
	if c.NArg() != 2 {
		return cli.Exit("want NAME URL", 2)
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	name, url := c.Args().Get(0), c.Args().Get(1)
	cfg, local, err := configLevel(c, r)
	if err != nil {
		return err
	}
	sec := dvcfmt.RemoteSection(strings.ToLower(name))
	if cfg.Section(sec) != nil && !c.Bool("force") {
		return fmt.Errorf("remote '%s' already exists; use --force to overwrite it", name)
	}
	cfg.Set(sec, "url", url)
	if c.Bool("default") {
		cfg.Set("core", "remote", strings.ToLower(name))
		fmt.Fprintf(c.App.Writer, "Setting '%s' as a default remote.\n", name)
	}
	return r.WriteConfig(local, cfg)
}

func dataRemoteModify(c *cli.Context) error {
	if c.NArg() != 3 && !(c.Bool("unset") && c.NArg() == 2) {
		return cli.Exit("want NAME OPTION VALUE", 2)
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	cfg, local, err := configLevel(c, r)
	if err != nil {
		return err
	}
	sec := dvcfmt.RemoteSection(strings.ToLower(c.Args().Get(0)))
	if r.Config().Section(sec) == nil {
		return fmt.Errorf("remote '%s' doesn't exist", c.Args().Get(0))
	}
	if c.Bool("unset") {
		cfg.Unset(sec, c.Args().Get(1))
	} else {
		cfg.Set(sec, c.Args().Get(1), c.Args().Get(2))
	}
	return r.WriteConfig(local, cfg)
}

func dataRemoteList(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	cfg := r.Config()
	def, _ := cfg.Get("core", "remote")
	for _, n := range cfg.Remotes() {
		url, _ := cfg.Get(dvcfmt.RemoteSection(n), "url")
		mark := ""
		if n == def {
			mark = "\t(default)"
		}
		fmt.Fprintf(c.App.Writer, "%s\t%s%s\n", n, url, mark)
	}
	return nil
}

func dataRemoteDefault(c *cli.Context) error {
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	if c.NArg() == 0 {
		def, ok := r.Config().Get("core", "remote")
		if !ok {
			return errors.New("no default remote set")
		}
		fmt.Fprintln(c.App.Writer, def)
		return nil
	}
	name := strings.ToLower(c.Args().Get(0))
	if r.Config().Section(dvcfmt.RemoteSection(name)) == nil {
		return fmt.Errorf("remote '%s' doesn't exist", name)
	}
	cfg, local, err := configLevel(c, r)
	if err != nil {
		return err
	}
	cfg.Set("core", "remote", name)
	return r.WriteConfig(local, cfg)
}

func dataGC(c *cli.Context) error {
	if !c.Bool("workspace") {
		return cli.Exit("pass -w/--workspace to confirm which objects to keep", 2)
	}
	r, err := openRepo(c)
	if err != nil {
		return err
	}
	n, err := r.GC(c.Context)
	fmt.Fprintf(c.App.Writer, "Removed %d objects from the cache.\n", n)
	return err
}
