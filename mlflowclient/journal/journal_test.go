package journal

import (
	"errors"
	"math"
	"os"
	"testing"

	"github.com/catdog-mlops/catdog/mlflowclient"
)

func TestAppendPendingAndTornTail(t *testing.T) {
	dir := t.TempDir()
	j, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		b := mlflowclient.Batch{Metrics: []mlflowclient.Metric{{Key: "m", Value: mlflowclient.Float(math.NaN()), Timestamp: 5, Step: int64(i)}}}
		if seq, err := j.Append(Entry{Op: OpLogBatch, Batch: &b}); err != nil || seq != int64(i+1) {
			t.Fatalf("Append #%d = %d, %v", i, seq, err)
		}
	}
	// a second process cannot open a journal in use
	if _, err := Open(j.Path()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open err = %v, want ErrLocked", err)
	}
	path := j.Path()
	j.Close()

	// a crash mid-write leaves a torn last line: it is ignored
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"op":"log_ba`)
	f.Close()
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	p, err := j.Pending()
	if err != nil || len(p) != 3 || p[2].Seq != 3 || !math.IsNaN(float64(p[0].Batch.Metrics[0].Value)) {
		t.Fatalf("Pending = %+v, %v", p, err)
	}
	if seq, err := j.Append(Entry{Op: OpTerminate, Terminate: &Terminate{Status: "FINISHED"}}); err != nil || seq != 4 {
		t.Fatalf("Append after a torn tail = %d, %v", seq, err)
	}
	if p, err := j.Pending(); err != nil || len(p) != 4 || p[3].Op != OpTerminate {
		t.Fatalf("Pending after append = %+v, %v", p, err)
	}
	if j.Done() {
		t.Fatal("Done before anything was applied")
	}
	files, _ := List(dir)
	if len(files) != 1 || files[0] != path {
		t.Fatalf("List = %v", files)
	}
}

func TestCorruptMiddleIsAnError(t *testing.T) {
	dir := t.TempDir()
	j, _ := Create(dir)
	path := j.Path()
	j.Close()
	os.WriteFile(path, []byte("{\"seq\":1,\"op\":\"log_batch\"}\ngarbage\n{\"seq\":2,\"op\":\"log_batch\"}\n"), 0o644)
	if _, err := Open(path); err == nil {
		t.Fatal("Open accepted a journal with a corrupt entry in the middle")
	}
	os.WriteFile(path, []byte("{\"seq\":1,\"op\":\"log_batch\"}\n{\"seq\":3,\"op\":\"log_batch\"}\n"), 0o644)
	if _, err := Open(path); err == nil {
		t.Fatal("Open accepted a sequence gap")
	}
}
