// Package gha writes GitHub Actions step output: outputs to $GITHUB_OUTPUT (multi-line safe),
// Markdown to $GITHUB_STEP_SUMMARY, and workflow commands on stdout (::error file=...::,
// ::group::, ::add-mask::). Outside Actions the same calls print plain text.
//
// An Actions value takes its file paths and writer as parameters (see New), never reading the
// environment behind the caller's back, so tests point it at temp files.
package gha

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Limits GitHub applies (docs: "Workflow commands", "Limits").
const (
	MaxSummaryBytes = 1024 * 1024 // a step summary above 1 MiB is rejected
	MaxOutputBytes  = 1024 * 1024 // outputs are limited to 1 MiB per job
	MaxAnnotations  = 10          // errors (and warnings) shown per step
)

// Errors returned by the file commands.
var (
	ErrSummaryTooLarge = errors.New("gha: step summary would exceed 1 MiB")
	ErrOutputTooLarge  = errors.New("gha: output value exceeds 1 MiB")
	ErrInvalidName     = errors.New("gha: invalid output name")
)

// Actions writes step output. The zero value is not usable; call New.
type Actions struct {
	w           io.Writer
	enabled     bool
	outputPath  string
	summaryPath string

	mu         sync.Mutex
	annotated  map[string]int
	suppressed map[string]int
}

// Env is where Actions output goes. FromEnv fills it from the runner's variables.
type Env struct {
	Enabled     bool   // GITHUB_ACTIONS == "true"
	OutputPath  string // GITHUB_OUTPUT
	SummaryPath string // GITHUB_STEP_SUMMARY
}

// FromEnv reads GITHUB_ACTIONS, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY through getenv.
func FromEnv(getenv func(string) string) Env {
	return Env{
		Enabled:     getenv("GITHUB_ACTIONS") == "true",
		OutputPath:  getenv("GITHUB_OUTPUT"),
		SummaryPath: getenv("GITHUB_STEP_SUMMARY"),
	}
}

// New returns an Actions writing workflow commands (or plain text) to w.
func New(w io.Writer, env Env) *Actions {
	return &Actions{w: w, enabled: env.Enabled, outputPath: env.OutputPath, summaryPath: env.SummaryPath,
		annotated: map[string]int{}, suppressed: map[string]int{}}
}

// Enabled reports whether output follows the Actions conventions.
func (a *Actions) Enabled() bool { return a.enabled }

// escapeData escapes a workflow command message (actions/toolkit command.ts).
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a workflow command property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

func (a *Actions) command(name string, props [][2]string, msg string) {
	var b strings.Builder
	b.WriteString("::")
	b.WriteString(name)
	sep := " "
	for _, p := range props {
		if p[1] == "" {
			continue
		}
		b.WriteString(sep + p[0] + "=" + escapeProperty(p[1]))
		sep = ","
	}
	b.WriteString("::")
	b.WriteString(escapeData(msg))
	b.WriteString("\n")
	a.mu.Lock()
	defer a.mu.Unlock()
	io.WriteString(a.w, b.String())
}

// Mask asks the runner to hide value in every later log line (one ::add-mask:: per line of a
// multi-line secret). Call it before anything could print the value. Outside Actions it does
// nothing.
func (a *Actions) Mask(value string) {
	if !a.enabled {
		return
	}
	for _, line := range strings.Split(strings.ReplaceAll(value, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) != "" {
			a.command("add-mask", nil, line)
		}
	}
}

// Group starts a folded log group; call the returned function to end it. Outside Actions it
// prints a "== title ==" header.
func (a *Actions) Group(title string) (end func()) {
	if !a.enabled {
		a.mu.Lock()
		fmt.Fprintf(a.w, "== %s ==\n", title)
		a.mu.Unlock()
		return func() {}
	}
	a.command("group", nil, title)
	return func() { a.command("endgroup", nil, "") }
}

// Annotation locates a message in a file. Zero fields are left out.
type Annotation struct {
	Title     string
	File      string
	Line, Col int
	EndLine   int
}

func (an Annotation) props() [][2]string {
	itoa := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	return [][2]string{{"title", an.Title}, {"file", an.File}, {"line", itoa(an.Line)}, {"endLine", itoa(an.EndLine)}, {"col", itoa(an.Col)}}
}

func (an Annotation) plain() string {
	loc := an.File
	if loc != "" && an.Line > 0 {
		loc += ":" + strconv.Itoa(an.Line)
		if an.Col > 0 {
			loc += ":" + strconv.Itoa(an.Col)
		}
	}
	parts := []string{}
	if loc != "" {
		parts = append(parts, loc)
	}
	if an.Title != "" {
		parts = append(parts, an.Title)
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ": ") + ": "
}

// Error emits an ::error annotation. Only the first MaxAnnotations errors of a step become
// annotations (GitHub drops the rest); later ones are printed as plain lines.
func (a *Actions) Error(msg string, an Annotation) { a.annotate("error", msg, an) }

// Warning emits a ::warning annotation (same limit as Error).
func (a *Actions) Warning(msg string, an Annotation) { a.annotate("warning", msg, an) }

// notice emits a ::notice annotation (same limit as Error).
func (a *Actions) notice(msg string, an Annotation) { a.annotate("notice", msg, an) }

func (a *Actions) annotate(kind, msg string, an Annotation) {
	a.mu.Lock()
	over := a.annotated[kind] >= MaxAnnotations
	if over {
		a.suppressed[kind]++
	} else {
		a.annotated[kind]++
	}
	a.mu.Unlock()
	if !a.enabled || over {
		a.mu.Lock()
		fmt.Fprintf(a.w, "%s: %s%s\n", kind, an.plain(), msg)
		a.mu.Unlock()
		return
	}
	a.command(kind, an.props(), msg)
}

// SetOutput sets a step output. In Actions it appends a heredoc block with a random delimiter
// to $GITHUB_OUTPUT, so values may span lines; outside Actions it prints "name: value" with
// lines joined by ", ".
func (a *Actions) SetOutput(name, value string) error {
	if name == "" || strings.ContainsAny(name, "\r\n=<") || strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if len(value) > MaxOutputBytes {
		return fmt.Errorf("%w: %s is %d bytes", ErrOutputTooLarge, name, len(value))
	}
	if !a.enabled || a.outputPath == "" {
		a.mu.Lock()
		defer a.mu.Unlock()
		plain := value
		if strings.ContainsAny(value, "\r\n") {
			plain = strings.Join(strings.FieldsFunc(value, func(r rune) bool { return r == '\n' || r == '\r' }), ", ")
		}
		_, err := fmt.Fprintf(a.w, "%s: %s\n", name, plain)
		return err
	}
	delim, err := delimiter(name, value)
	if err != nil {
		return err
	}
	return a.appendFile(a.outputPath, fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim), 0)
}

// delimiter returns a random heredoc delimiter found in neither name nor value.
func delimiter(name, value string) (string, error) {
	for range 3 {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("gha: delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(b)
		if !strings.Contains(name, d) && !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", errors.New("gha: could not find a heredoc delimiter absent from the value")
}

// AppendSummary appends Markdown to the step summary; outside Actions it prints it. It refuses
// to grow the summary beyond MaxSummaryBytes.
func (a *Actions) AppendSummary(markdown string) error {
	if !strings.HasSuffix(markdown, "\n") {
		markdown += "\n"
	}
	if !a.enabled || a.summaryPath == "" {
		a.mu.Lock()
		defer a.mu.Unlock()
		_, err := io.WriteString(a.w, markdown)
		return err
	}
	return a.appendFile(a.summaryPath, markdown, MaxSummaryBytes)
}

func (a *Actions) appendFile(path, text string, limit int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("gha: %w", err)
	}
	if limit > 0 {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("gha: %w", err)
		}
		if fi.Size()+int64(len(text)) > limit {
			f.Close()
			return ErrSummaryTooLarge
		}
	}
	_, werr := io.WriteString(f, text)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("gha: %w", err)
	}
	return nil
}

// Table renders a Markdown table; cells have "|" and newlines escaped.
func Table(header []string, rows [][]string) string {
	esc := func(s string) string {
		return strings.NewReplacer("|", `\|`, "\r", " ", "\n", "<br>").Replace(s)
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
