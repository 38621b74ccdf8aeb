package gha

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Bounds on a parsed test log.
const (
	maxTestLogLine  = 1 << 20
	maxFailures     = 1000
	maxMessageBytes = 4096
)

// TestFailure is one failing test or compile error found in `go test` output.
type TestFailure struct {
	Package string // import path
	Test    string // "" for a build or vet error
	File    string // repository-relative path when known
	Line    int
	Message string
}

// TestReport summarises `go test` output.
type TestReport struct {
	Failures []TestFailure
	Packages map[string]string // import path -> "ok", "FAIL" or "no test files"
}

// Failed reports whether any package or test failed.
func (r *TestReport) Failed() bool {
	if len(r.Failures) > 0 {
		return true
	}
	for _, s := range r.Packages {
		if s == "FAIL" {
			return true
		}
	}
	return false
}

var (
	reFailTest  = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)
	reLocation  = regexp.MustCompile(`^\s+([\w.\-]+\.go):(\d+): (.*)$`)
	rePkgResult = regexp.MustCompile(`^(ok|FAIL|\?)\s+(\S+)(?:\s+(.*))?$`)
	reBuildHead = regexp.MustCompile(`^# (\S+)`)
	reBuildErr  = regexp.MustCompile(`^((?:\.{0,2}/)?[\w./\-]+\.go):(\d+)(?::\d+)?: (.*)$`)
)

// ParseGoTest reads the plain output of `go test ./...` (as `make test` prints it) and returns
// the failing tests with the file and line of their first message, compile and vet errors, and
// each package's result. module is the module path (from go.mod), used to turn a package's
// test file name into a repository-relative path.
func ParseGoTest(r io.Reader, module string) (*TestReport, error) {
	rep := &TestReport{Packages: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxTestLogLine)
	var pending []TestFailure // failures of the package whose result line is still to come
	var cur *TestFailure
	buildPkg := ""
	add := func(f TestFailure) {
		if len(rep.Failures)+len(pending) < maxFailures {
			pending = append(pending, f)
		}
	}
	for sc.Scan() {
		line := sc.Text()
		if m := reFailTest.FindStringSubmatch(line); m != nil {
			add(TestFailure{Test: m[1]})
			cur = &pending[len(pending)-1]
			continue
		}
		if m := reLocation.FindStringSubmatch(line); m != nil && cur != nil {
			if cur.File == "" {
				cur.File = m[1]
				fmt.Sscan(m[2], &cur.Line)
				cur.Message = m[3]
			} else if len(cur.Message) < maxMessageBytes {
				cur.Message += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		if m := rePkgResult.FindStringSubmatch(line); m != nil && (strings.HasPrefix(m[2], module) || strings.Contains(m[2], ".")) {
			pkg, status := m[2], m[1]
			if status == "?" {
				status = "no test files"
			}
			rep.Packages[pkg] = status
			for _, f := range pending {
				f.Package = pkg
				if f.File != "" && !strings.Contains(f.File, "/") {
					f.File = path.Join(strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/"), f.File)
				}
				rep.Failures = append(rep.Failures, f)
			}
			pending, cur = nil, nil
			continue
		}
		if m := reBuildHead.FindStringSubmatch(line); m != nil {
			buildPkg = m[1]
			continue
		}
		if m := reBuildErr.FindStringSubmatch(line); m != nil && buildPkg != "" {
			f := TestFailure{Package: buildPkg, File: strings.TrimPrefix(path.Clean(m[1]), "./"), Message: m[3]}
			fmt.Sscan(m[2], &f.Line)
			if len(rep.Failures) < maxFailures {
				rep.Failures = append(rep.Failures, f)
			}
			continue
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gha: read test log: %w", err)
	}
	rep.Failures = append(rep.Failures, pending...) // a log cut short: no result line came
	rep.Failures = dropParentFailures(rep.Failures)
	return rep, nil
}

// dropParentFailures removes "--- FAIL: TestX" entries without a location when a subtest
// "TestX/case" of the same package failed (go test reports both).
func dropParentFailures(fs []TestFailure) []TestFailure {
	out := fs[:0]
	for _, f := range fs {
		if f.File == "" && f.Test != "" {
			parent := false
			for _, g := range fs {
				if g.Package == f.Package && strings.HasPrefix(g.Test, f.Test+"/") {
					parent = true
					break
				}
			}
			if parent {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// ReportTests emits an ::error annotation per failure (at most MaxAnnotations; the rest are
// printed plainly) and appends a Markdown table of package results to the step summary.
func (a *Actions) ReportTests(rep *TestReport) error {
	for _, f := range rep.Failures {
		title := f.Test
		if title == "" {
			title = "build " + f.Package
		}
		msg := f.Message
		if msg == "" {
			msg = "failed"
		}
		a.Error(msg, Annotation{Title: title, File: f.File, Line: f.Line})
	}
	pkgs := make([]string, 0, len(rep.Packages))
	for p := range rep.Packages {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	var rows [][]string
	counts := map[string]int{}
	for _, p := range pkgs {
		counts[rep.Packages[p]]++
		if rep.Packages[p] != "no test files" {
			rows = append(rows, []string{p, rep.Packages[p]})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### go test\n\n%d packages ok, %d failed, %d without tests; %d failures.\n\n",
		counts["ok"], counts["FAIL"], counts["no test files"], len(rep.Failures))
	if len(rows) > 0 {
		b.WriteString(Table([]string{"package", "result"}, rows))
	}
	if len(rep.Failures) > 0 {
		b.WriteString("\n")
		var frows [][]string
		for _, f := range rep.Failures {
			loc := f.File
			if f.Line > 0 {
				loc = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			msg := f.Message
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			frows = append(frows, []string{f.Package, f.Test, loc, msg})
		}
		b.WriteString(Table([]string{"package", "test", "where", "message"}, frows))
	}
	return a.AppendSummary(b.String())
}
