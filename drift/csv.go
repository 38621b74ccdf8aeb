package drift

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// EncodeCSV writes the table as CSV: a header of column names, then one row per table row,
// values in Go's shortest round-trip formatting (so that a reader that parses correctly
// rounded decimals gets the same float64 back).
func (t Table) EncodeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Names); err != nil {
		return err
	}
	row := make([]string, len(t.Names))
	for r := 0; r < t.Rows(); r++ {
		for c := range t.Names {
			row[c] = strconv.FormatFloat(t.Columns[c][r], 'g', -1, 64)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// DecodeCSV reads feature rows whose header names (at least) every column of like, and returns
// them as a table with like's names and kinds; other columns are ignored.
func DecodeCSV(r io.Reader, like Table) (Table, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return Table{}, fmt.Errorf("drift: csv header: %w", err)
	}
	pos := map[string]int{}
	for i, h := range header {
		pos[strings.TrimSpace(h)] = i
	}
	t := Table{Names: like.Names, Kinds: like.Kinds, Columns: make([][]float64, len(like.Names))}
	idx := make([]int, len(like.Names))
	for i, n := range like.Names {
		j, ok := pos[n]
		if !ok {
			return Table{}, fmt.Errorf("drift: csv has no column %q (header %v)", n, header)
		}
		idx[i] = j
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Table{}, fmt.Errorf("drift: csv: %w", err)
		}
		for i, j := range idx {
			v, err := strconv.ParseFloat(rec[j], 64)
			if err != nil {
				return Table{}, fmt.Errorf("drift: csv line %d, column %s: %w", line, like.Names[i], err)
			}
			t.Columns[i] = append(t.Columns[i], v)
		}
	}
	return t, t.Validate()
}
