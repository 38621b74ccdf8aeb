package dvcfmt_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

func addGolden(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
}

// FuzzParseDVCFile: never panics; whatever parses re-encodes to something that parses to
// the same value.
func FuzzParseDVCFile(f *testing.F) {
	addGolden(f, "testdata/golden/*.dvc")
	f.Add([]byte("outs:\n- path: x\n  cache: false\n  push: false\n  desc: 'd'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := dvcfmt.ParseDVCFile(data)
		if err != nil {
			return
		}
		enc := d.Encode()
		d2, err := dvcfmt.ParseDVCFile(enc)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(d.Outs, d2.Outs) && len(d.Outs) > 0 {
			t.Fatalf("round trip changed outs:\n%+v\n%+v\n%s", d.Outs, d2.Outs, enc)
		}
	})
}

// FuzzParseDir: never panics; parse -> encode -> parse is stable.
func FuzzParseDir(f *testing.F) {
	addGolden(f, "testdata/golden/*.dir")
	f.Add([]byte(`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "a/\u00e9"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := dvcfmt.ParseDir(data)
		if err != nil {
			return
		}
		enc := dvcfmt.EncodeDir(e)
		e2, err := dvcfmt.ParseDir(enc)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip: %v\n%v\n%v", err, e, e2)
		}
	})
}

// FuzzParseConfig: never panics; parse -> encode -> parse keeps every value.
func FuzzParseConfig(f *testing.F) {
	addGolden(f, "testdata/golden/*.config")
	f.Add([]byte("[core]\n    remote = a # c\n[cache]\n    type = reflink, copy\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := dvcfmt.ParseConfig(data)
		if err != nil {
			return
		}
		enc := c.Encode()
		c2, err := dvcfmt.ParseConfig(enc)
		if err != nil {
			t.Fatalf("re-encoded config does not parse: %v\n%s", err, enc)
		}
		for _, s := range c.Sections {
			for _, kv := range s.Keys {
				if v, ok := c2.Get(s.Name, kv.Key); !ok || v != kv.Value {
					t.Fatalf("[%s] %s = %q became %q\n%s", s.Name, kv.Key, kv.Value, v, enc)
				}
			}
		}
	})
}
