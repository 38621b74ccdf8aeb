package drift

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Window is a sliding window over the most recent feature rows, bounded by count and by age:
// it holds at most MaxRows rows, none older than MaxAge. It stores only feature values (a fixed
// number of float64 per row, in a ring allocated once), never the inputs they came from. It is
// safe for concurrent use.
type Window struct {
	mu      sync.Mutex
	width   int
	maxRows int
	maxAge  time.Duration
	vals    []float64   // maxRows × width ring
	times   []time.Time // arrival time per ring slot
	head, n int         // oldest slot, rows held
}

// NewWindow returns an empty window of rows with width values each. maxAge 0 means no age bound.
func NewWindow(width, maxRows int, maxAge time.Duration) (*Window, error) {
	if width < 1 || maxRows < 1 || maxRows > 1<<20 || maxAge < 0 {
		return nil, fmt.Errorf("drift: window of %d rows × %d values, max age %v", maxRows, width, maxAge)
	}
	return &Window{width: width, maxRows: maxRows, maxAge: maxAge,
		vals: make([]float64, maxRows*width), times: make([]time.Time, maxRows)}, nil
}

// Add appends a row observed at t, dropping the oldest row when the window is full.
func (w *Window) Add(t time.Time, row []float64) {
	if len(row) != w.width {
		panic(fmt.Sprintf("drift: window row of %d values, want %d", len(row), w.width))
	}
	w.mu.Lock()
	slot := (w.head + w.n) % w.maxRows
	if w.n == w.maxRows {
		slot = w.head
		w.head = (w.head + 1) % w.maxRows
	} else {
		w.n++
	}
	copy(w.vals[slot*w.width:], row)
	w.times[slot] = t
	w.mu.Unlock()
}

// evict drops rows older than maxAge at now. The caller holds mu.
func (w *Window) evict(now time.Time) {
	if w.maxAge == 0 {
		return
	}
	for w.n > 0 && now.Sub(w.times[w.head]) > w.maxAge {
		w.head = (w.head + 1) % w.maxRows
		w.n--
	}
}

// Len is the number of rows in the window at now (rows older than MaxAge are dropped first).
func (w *Window) Len(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.evict(now)
	return w.n
}

// Columns copies the window at now, oldest row first, as one slice per value position.
func (w *Window) Columns(now time.Time) [][]float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.evict(now)
	cols := make([][]float64, w.width)
	for c := range cols {
		cols[c] = make([]float64, w.n)
	}
	for i := 0; i < w.n; i++ {
		s := ((w.head + i) % w.maxRows) * w.width
		for c := range cols {
			cols[c][i] = w.vals[s+c]
		}
	}
	return cols
}

// MonitorConfig configures a Monitor (the `drift:` section of params.yaml).
type MonitorConfig struct {
	// WindowSize is the most rows the window holds (default 500).
	WindowSize int `yaml:"window_size" json:"window_size"`
	// WindowMaxAge drops rows older than this (default 1h; 0 in YAML means the default).
	WindowMaxAge time.Duration `yaml:"window_max_age" json:"window_max_age"`
	// EveryRequests compares after this many new rows (default WindowSize: each comparison
	// sees a window that has turned over). One comparison of a 500-row window with a
	// 1,600-row reference takes tens of milliseconds of CPU, so a cadence of 100 on a 500-row
	// window cost 3.4 % of p50 latency in the serving benchmark (make bench-serve-drift).
	EveryRequests int `yaml:"every_requests" json:"every_requests"`
	// Every compares at least this often while rows arrive or age out (default 30s).
	Every time.Duration `yaml:"every" json:"every"`
	// MinRows is the fewest rows compared; smaller windows only report their size (default 30).
	MinRows int `yaml:"min_rows" json:"min_rows"`
	// Options are the comparison's methods and thresholds (default: Evidently's).
	Options Options `yaml:",inline" json:"options"`
}

// WithDefaults fills zero fields with the documented defaults.
func (c MonitorConfig) WithDefaults() MonitorConfig {
	if c.WindowSize == 0 {
		c.WindowSize = 500
	}
	if c.WindowMaxAge == 0 {
		c.WindowMaxAge = time.Hour
	}
	if c.EveryRequests == 0 {
		c.EveryRequests = c.WindowSize
	}
	if c.Every == 0 {
		c.Every = 30 * time.Second
	}
	if c.MinRows == 0 {
		c.MinRows = 30
	}
	return c
}

// Validate checks a config after WithDefaults.
func (c MonitorConfig) Validate() error {
	switch {
	case c.WindowSize < 1 || c.WindowSize > 100000:
		return fmt.Errorf("drift: window_size %d out of [1,100000]", c.WindowSize)
	case c.WindowMaxAge < 0:
		return fmt.Errorf("drift: negative window_max_age %v", c.WindowMaxAge)
	case c.EveryRequests < 1:
		return fmt.Errorf("drift: every_requests %d must be positive", c.EveryRequests)
	case c.Every < 100*time.Millisecond:
		return fmt.Errorf("drift: every %v is below 100ms", c.Every)
	case c.MinRows < 1 || c.MinRows > c.WindowSize:
		return fmt.Errorf("drift: min_rows %d out of [1, window_size %d]", c.MinRows, c.WindowSize)
	}
	return c.Options.Validate()
}

// Status is one periodic comparison of the window with the reference.
type Status struct {
	At         time.Time
	WindowRows int
	// Result is nil when the window held fewer than MinRows rows, or on Err.
	Result *Result
	// Err is a comparison failure (a row holding NaN, say).
	Err error
}

// Monitor keeps a window of the features of recent inputs and compares it with a reference
// profile every EveryRequests rows or Every, whichever comes first, reporting each comparison
// to a callback. Observe is cheap (a copy into the ring); comparisons run on Run's goroutine.
type Monitor struct {
	cfg    MonitorConfig
	ref    Table
	index  []int // position in an observed row of each reference column
	win    *Window
	report func(Status)
	now    func() time.Time

	mu    sync.Mutex
	since int // rows since the last comparison
	kick  chan struct{}
}

// NewMonitor returns a monitor of rows whose values are named by rowNames (every feature of the
// profile must be among them), reporting to report.
func NewMonitor(p *Profile, rowNames []string, cfg MonitorConfig, report func(Status)) (*Monitor, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return NewTableMonitor(p.Table(), rowNames, cfg, report)
}

// NewTableMonitor is NewMonitor against any reference table: the prediction table of a
// PredictionProfile, say (every column of ref must be among rowNames).
func NewTableMonitor(ref Table, rowNames []string, cfg MonitorConfig, report func(Status)) (*Monitor, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if ref.Rows() == 0 {
		return nil, errors.New("drift: empty reference table")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pos := map[string]int{}
	for i, n := range rowNames {
		pos[n] = i
	}
	index := make([]int, len(ref.Names))
	for i, n := range ref.Names {
		j, ok := pos[n]
		if !ok {
			return nil, fmt.Errorf("drift: the reference's column %q is not computed here (have %v)", n, rowNames)
		}
		index[i] = j
	}
	win, err := NewWindow(len(rowNames), cfg.WindowSize, cfg.WindowMaxAge)
	if err != nil {
		return nil, err
	}
	if report == nil {
		report = func(Status) {}
	}
	return &Monitor{cfg: cfg, ref: ref, index: index, win: win, report: report, now: time.Now, kick: make(chan struct{}, 1)}, nil
}

// Config returns the effective configuration.
func (m *Monitor) Config() MonitorConfig { return m.cfg }

// Observe adds one row (in rowNames order) observed now.
func (m *Monitor) Observe(row []float64) {
	m.win.Add(m.now(), row)
	m.mu.Lock()
	m.since++
	due := m.since >= m.cfg.EveryRequests
	m.mu.Unlock()
	if due {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Check compares the window with the reference now and reports the status.
func (m *Monitor) Check() (Status, error) {
	m.mu.Lock()
	m.since = 0
	m.mu.Unlock()
	now := m.now()
	cols := m.win.Columns(now)
	st := Status{At: now, WindowRows: len(cols[0])}
	if st.WindowRows >= m.cfg.MinRows {
		cur := Table{Names: m.ref.Names, Kinds: m.ref.Kinds, Columns: make([][]float64, len(m.index))}
		for i, j := range m.index {
			cur.Columns[i] = cols[j]
		}
		res, err := Compare(m.ref, cur, m.cfg.Options)
		if err != nil {
			st.Err = err
		} else {
			st.Result = &res
		}
	}
	m.report(st)
	return st, st.Err
}

// Run compares every Every and whenever EveryRequests rows have arrived, until ctx ends;
// comparison errors are reported in Status.Err and the monitor goes on.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case <-t.C:
		case <-m.kick:
		}
		_, _ = m.Check()
	}
}
