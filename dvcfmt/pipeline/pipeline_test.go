package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// lockText is a dvc.lock written by dvc 3.67.1 (see dvcfmt/repo's TestReproMatchesDVC, which
// compares catdog's output with dvc's on every run).
const lockText = `schema: '2.0'
stages:
  prepare:
    cmd: mkdir -p out/prep && cp data/raw/* out/prep/ && echo 42 > out/prep/seed
    deps:
    - path: data/raw
      hash: md5
      md5: 6ea46d53348e675e87743182f72de908.dir
      size: 4
      nfiles: 2
    - path: src/s.sh
      hash: md5
      md5: 401b30e3b8b5d629635a5c613cdb7919
      size: 2
      isexec: true
    params:
      params.yaml:
        arch:
          widths:
          - 32
          - 64
          dropout: 0.3
        seed: 42
      other.yaml:
        x: yes
    outs:
    - path: out/prep
      hash: md5
      md5: f46dc97eab178055e54737b71b13df44.dir
      size: 7
      nfiles: 3
  q:
    cmd:
    - echo one
    - echo two > q.txt
    outs:
    - path: q.txt
      hash: md5
      md5: c193497a1a06b2c72230e6146ff47080
      size: 4
`

func TestLockRoundTrip(t *testing.T) {
	l, err := ParseLock([]byte(lockText))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Stages) != 2 || !l.Stages[1].CmdIsList || l.Stages[0].Deps[1].IsExec != true || l.Stages[0].Outs[0].NFiles != 3 {
		t.Fatalf("parsed %+v", l.Stages)
	}
	b, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != lockText {
		t.Errorf("re-encoded:\n%s\nwant:\n%s", b, lockText)
	}
}

func TestParseErrors(t *testing.T) {
	params, err := ParseParams([]byte("lr: 0.1\narch:\n  w: [1, 2]\nname: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml, want string
		is               error
	}{
		{"no cmd", "stages:\n  a:\n    deps: [x]\n", `stage "a": cmd is required`, nil},
		{"unknown key", "stages:\n  a:\n    cmd: x\n    dep: [x]\n", `stage "a": dep: unknown key`, nil},
		{"missing var", "stages:\n  a:\n    cmd: run ${nope}\n", `stage "a": cmd: param not found: ${nope}`, ErrMissingParam},
		{"list var", "stages:\n  a:\n    cmd: run ${arch.w}\n", "only scalars", nil},
		{"self cycle", "stages:\n  a:\n    cmd: x\n    deps: [o]\n    outs: [o/f]\n", "cycle", ErrCycle},
		{"two stage cycle", "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n", "a -> b -> a", ErrCycle},
		{"same output", "stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o/x]\n", `overlaps output o of stage "a"`, nil},
		{"absolute output", "stages:\n  a:\n    cmd: x\n    outs: [/tmp/x]\n", "relative to the repository root", nil},
		{"output outside", "stages:\n  a:\n    cmd: x\n    outs: [../x]\n", "outside the repository", nil},
		{"bad name", "stages:\n  'a b':\n    cmd: x\n", "invalid stage name", nil},
		{"foreach", "stages:\n  a:\n    foreach: [1]\n    do: {cmd: x}\n", "not supported", nil},
		{"top level", "stage:\n  a: {cmd: x}\n", "unknown top-level key", nil},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), params)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseInterpolatesAndOrders(t *testing.T) {
	params, _ := ParseParams([]byte("lr: 1e-3\ntta: true\ndata: ../photos\nsub:\n  n: 3\n"))
	p, err := Parse([]byte(`stages:
  evaluate:
    cmd: eval --tta ${tta} --n ${sub.n}
    deps: [model, /srv/photos/../photos]
  train:
    cmd:
    - train --lr ${lr}
    - echo done
    deps: [prepared/]
    params: [lr, {other.yaml: [a, b]}, {third.yaml: }]
    outs: [model]
    metrics: [{m.json: {cache: false}}]
  prepare:
    cmd: prep ${data}
    deps: ["${data}"]
    outs: [prepared]
`), params)
	if err != nil {
		t.Fatal(err)
	}
	order, _ := p.Order()
	var names []string
	for _, s := range order {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "prepare,train,evaluate" {
		t.Errorf("order %v", names)
	}
	if c := p.Stage("evaluate").Cmd[0]; c != "eval --tta true --n 3" {
		t.Errorf("cmd %q", c)
	}
	tr := p.Stage("train")
	if tr.Cmd[0] != "train --lr 0.001" || !tr.CmdIsList || tr.Deps[0] != "prepared" || tr.Outs[1].Cache || tr.Outs[1].Kind != KindMetric {
		t.Errorf("train %+v", tr)
	}
	if len(tr.Params) != 3 || tr.Params[1].File != "other.yaml" || tr.Params[2].Keys != nil {
		t.Errorf("params %+v", tr.Params)
	}
	if d := p.Stage("prepare").Deps[0]; d != "../photos" {
		t.Errorf("dep %q", d)
	}
	if d := p.Stage("evaluate").Deps[1]; d != "/srv/photos" {
		t.Errorf("external dep %q", d)
	}
	if got := p.downstream("prepare"); strings.Join(got, ",") != "evaluate,train" {
		t.Errorf("downstream %v", got)
	}
}

func TestParamsValuesAndEqual(t *testing.T) {
	p, _ := ParseParams([]byte("b: 1\na:\n  z: [1, 2.0]\n  y: null\n"))
	v, err := p.Values("params.yaml", []string{"b", "a.z", "a"})
	if err != nil || len(v) != 3 || v[0].Key != "a" || v[1].Key != "a.z" {
		t.Fatalf("Values = %+v, %v", v, err)
	}
	if _, err := p.Values("params.yaml", []string{"a.q"}); !errors.Is(err, ErrMissingParam) {
		t.Errorf("missing key err = %v", err)
	}
	q, _ := ParseParams([]byte("a:\n  y: ~\n  z: [1.0, 2]\nb: 1.0\n"))
	for _, k := range []string{"a", "b"} {
		x, _ := p.Lookup(k)
		y, _ := q.Lookup(k)
		if !Equal(x, y) {
			t.Errorf("%s: %v != %v", k, x, y)
		}
	}
	if Equal(int64(1), "1") || Equal([]any{int64(1)}, []any{int64(2)}) {
		t.Error("unequal values compared equal")
	}
}
