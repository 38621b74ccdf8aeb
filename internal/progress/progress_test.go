package progress

import (
	"sync"
	"testing"
)

func TestNilFuncIgnores(t *testing.T) {
	var f Func
	f.Report(Update{Op: "x"})
	c := f.Count("x", 3)
	c.Add(1)
	c.Finish()
}

func TestCounterConcurrent(t *testing.T) {
	var mu sync.Mutex
	var got []Update
	f := Func(func(u Update) { mu.Lock(); got = append(got, u); mu.Unlock() })
	c := f.Count("files", 100)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				c.Add(1)
			}
		}()
	}
	wg.Wait()
	c.Finish()
	if len(got) != 102 {
		t.Fatalf("%d updates, want 102 (start, 100 adds, final)", len(got))
	}
	last := got[len(got)-1]
	if !last.Final || last.Done != 100 || last.Total != 100 || last.Op != "files" {
		t.Errorf("final update %+v", last)
	}
	for i := 1; i < len(got)-1; i++ {
		if got[i].Done != int64(i) {
			t.Fatalf("update %d has Done %d: counts must arrive in order", i, got[i].Done)
		}
	}
}
