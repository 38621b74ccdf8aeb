package dvcfmt_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

// TestGoldenDVCFiles: every .dvc file captured from the real dvc parses, and encoding it
// gives back the same bytes.
func TestGoldenDVCFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.dvc")
	if len(files) < 10 {
		t.Fatalf("only %d golden .dvc files", len(files))
	}
	for _, p := range files {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := dvcfmt.ParseDVCFile(want)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := f.Encode(); string(got) != string(want) {
			t.Errorf("%s: Encode() =\n%s\nwant\n%s", p, got, want)
		}
	}
}

func TestParseDVCFileFields(t *testing.T) {
	b, _ := os.ReadFile("testdata/golden/dir-tree.dvc")
	f, err := dvcfmt.ParseDVCFile(b)
	if err != nil {
		t.Fatal(err)
	}
	o := f.Outs[0]
	if o.MD5 != "eeb340b934e1880a256efdf357478f43.dir" || !o.IsDir() || o.Size != 6 || o.NFiles != 5 || o.Path != "data" || o.Legacy() {
		t.Fatalf("parsed %+v", o)
	}
	b, _ = os.ReadFile("testdata/golden/exec-file.dvc")
	f, err = dvcfmt.ParseDVCFile(b)
	if err != nil || !f.Outs[0].IsExec || f.Outs[0].IsDir() {
		t.Fatalf("exec file: %+v, %v", f, err)
	}
}

func TestParseDVCFileRejects(t *testing.T) {
	for name, in := range map[string]string{
		"unknown top key":  "outs:\n- path: x\nbogus: 1\n",
		"unknown out key":  "outs:\n- path: x\n  colour: red\n",
		"no path":          "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n",
		"escaping path":    "outs:\n- path: ../etc/passwd\n",
		"absolute path":    "outs:\n- path: /etc/passwd\n",
		"bad md5":          "outs:\n- md5: xyz\n  path: x\n",
		"bad size":         "outs:\n- path: x\n  size: big\n",
		"negative size":    "outs:\n- path: x\n  size: -1\n",
		"unsupported hash": "outs:\n- path: x\n  hash: sha256\n",
		"outs not list":    "outs: x\n",
		"top not mapping":  "- a\n",
		"duplicate key":    "outs:\n- path: x\n  path: y\n",
		"bad yaml":         "outs: [\n",
	} {
		if _, err := dvcfmt.ParseDVCFile([]byte(in)); err == nil {
			t.Errorf("%s: ParseDVCFile(%q) succeeded", name, in)
		}
	}
}

// TestLegacyOut: a dvc 2 out has no hash key and reads as legacy.
func TestLegacyOut(t *testing.T) {
	f, err := dvcfmt.ParseDVCFile([]byte("outs:\n- md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n  size: 6\n  nfiles: 2\n  path: data\n"))
	if err != nil || !f.Outs[0].Legacy() {
		t.Fatalf("%+v %v", f, err)
	}
	if got := string(f.Encode()); strings.Contains(got, "hash:") {
		t.Fatalf("legacy out re-encoded with a hash key:\n%s", got)
	}
}

// TestEncodeDirExamples uses the worked examples of dvc-formats.md §2.2 (from dvc-data's
// own tests) and the .dir object captured from dvc.
func TestEncodeDirExamples(t *testing.T) {
	golden, _ := os.ReadFile("testdata/golden/eeb340b934e1880a256efdf357478f43.dir")
	cases := []struct {
		entries []dvcfmt.DirEntry
		want    string // exact bytes, or "" to skip
		oid     string
	}{
		{[]dvcfmt.DirEntry{{"acbd18db4cc2f85cedef654fccc4a4d8", "foo"}, {"37b51d194a7513e45b56f6524f2d51f2", "bar"}},
			`[{"md5": "37b51d194a7513e45b56f6524f2d51f2", "relpath": "bar"}, {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "foo"}]`,
			"5ea40360f5b4ec688df672a4db9c17d1.dir"},
		{[]dvcfmt.DirEntry{{"258622b1688250cb619f3c9ccaefb7eb", "baz"}, {"c157a79031e1c40f85931829bc5fc552", "bar"}},
			"", "1f69c66028c35037e8bf67e5bc4ceb6a.dir"},
		{[]dvcfmt.DirEntry{{"fbade9e36a3f36d3d676c1b808451dd7", "é.txt"}, {"9dd4e461268c8034f5c8564e155c67a6", "sub/x.txt"},
			{"7694f4a66316e53c8cdd9d9954bd611d", "sub-dir/q"}, {"415290769594460e2e485922904f345d", "a-b.txt"}},
			`[{"md5": "415290769594460e2e485922904f345d", "relpath": "a-b.txt"}, {"md5": "7694f4a66316e53c8cdd9d9954bd611d", "relpath": "sub-dir/q"}, {"md5": "9dd4e461268c8034f5c8564e155c67a6", "relpath": "sub/x.txt"}, {"md5": "fbade9e36a3f36d3d676c1b808451dd7", "relpath": "\u00e9.txt"}]`,
			""},
		{nil, "[]", "d751713988987e9331980363e24189ce.dir"},
		{[]dvcfmt.DirEntry{{"d41d8cd98f00b204e9800998ecf8427e", "empty.txt"}, {"acbd18db4cc2f85cedef654fccc4a4d8", "foo"},
			{"7694f4a66316e53c8cdd9d9954bd611d", "sub-dir/q"}, {"9dd4e461268c8034f5c8564e155c67a6", "sub/x y.txt"}, {"fbade9e36a3f36d3d676c1b808451dd7", "é.txt"}},
			string(golden), "eeb340b934e1880a256efdf357478f43.dir"},
		{[]dvcfmt.DirEntry{{"d41d8cd98f00b204e9800998ecf8427e", "猫 🐱\t\"q\"\\/<&>\x7f"}},
			`[{"md5": "d41d8cd98f00b204e9800998ecf8427e", "relpath": "\u732b \ud83d\udc31\t\"q\"\\/<&>\u007f"}]`, ""},
	}
	for i, c := range cases {
		got := dvcfmt.EncodeDir(c.entries)
		if c.want != "" && string(got) != c.want {
			t.Errorf("case %d: EncodeDir =\n%s\nwant\n%s", i, got, c.want)
		}
		if c.oid != "" && dvcfmt.DirOID(got) != c.oid {
			t.Errorf("case %d: DirOID = %s, want %s", i, dvcfmt.DirOID(got), c.oid)
		}
		back, err := dvcfmt.ParseDir(got)
		if err != nil {
			t.Fatalf("case %d: ParseDir(EncodeDir) = %v", i, err)
		}
		if string(dvcfmt.EncodeDir(back)) != string(got) {
			t.Errorf("case %d: round trip changed the bytes", i)
		}
	}
}

func TestParseDirRejects(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `[1]`, `[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8"}]`,
		`[{"md5": "zz", "relpath": "a"}]`,
		`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8.dir", "relpath": "a"}]`,
		`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "../a"}]`,
		`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "/a"}]`,
		`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "a//b"}]`,
		`[{"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "a"}, {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "a"}]`,
	} {
		if _, err := dvcfmt.ParseDir([]byte(in)); err == nil {
			t.Errorf("ParseDir(%q) succeeded", in)
		}
	}
}

// TestGoldenConfigs: configs written by dvc parse and re-encode byte for byte.
func TestGoldenConfigs(t *testing.T) {
	for _, p := range []string{"testdata/golden/remote-cache.config", "testdata/golden/empty.config"} {
		want, _ := os.ReadFile(p)
		c, err := dvcfmt.ParseConfig(want)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := c.Encode(); string(got) != string(want) {
			t.Errorf("%s: Encode() =\n%s\nwant\n%s", p, got, want)
		}
	}
	b, _ := os.ReadFile("testdata/golden/remote-cache.config")
	c, _ := dvcfmt.ParseConfig(b)
	for _, kv := range [][3]string{
		{"core", "remote", "myrem"},
		{"cache", "type", "hardlink,copy"},
		{`remote "myrem"`, "url", "/tmp/dvcx-remote"},
		{`remote "s3r"`, "endpointurl", "http://127.0.0.1:9000"},
	} {
		if v, ok := c.Get(kv[0], kv[1]); !ok || v != kv[2] {
			t.Errorf("Get(%s, %s) = %q, %v; want %q", kv[0], kv[1], v, ok, kv[2])
		}
	}
	if got := strings.Join(c.Remotes(), ","); got != "myrem,s3r" {
		t.Errorf("Remotes() = %s", got)
	}
}

// TestConfigBuild: a config built with Set encodes as `dvc remote add -d` writes it.
func TestConfigBuild(t *testing.T) {
	c := &dvcfmt.Config{}
	c.Set(dvcfmt.RemoteSection("myrem"), "url", "/tmp/dvcx-remote")
	c.Set("core", "remote", "myrem")
	c.Set(dvcfmt.RemoteSection("s3r"), "url", "s3://bucket/prefix")
	c.Set(dvcfmt.RemoteSection("s3r"), "endpointurl", "http://127.0.0.1:9000")
	c.Set("cache", "type", "hardlink,copy")
	want := "[core]\n    remote = myrem\n['remote \"myrem\"']\n    url = /tmp/dvcx-remote\n['remote \"s3r\"']\n    url = s3://bucket/prefix\n    endpointurl = http://127.0.0.1:9000\n[cache]\n    type = \"hardlink,copy\"\n"
	if got := string(c.Encode()); got != want {
		t.Errorf("Encode() =\n%s\nwant\n%s", got, want)
	}
	c.Unset("cache", "type")
	if c.Section("cache") != nil {
		t.Error("Unset of the last key kept the section")
	}
}

func TestParseConfigValues(t *testing.T) {
	in := "# top comment\n[Core]\n    Remote = MyRem  # inline\n    autostage = true\n[\"remote \\\"x\\\"\"]\n[cache]\n  type = reflink, copy\n  dir = 'some # dir'\n  empty = \"\"\n"
	_, err := dvcfmt.ParseConfig([]byte(in))
	if err == nil {
		t.Fatal("escaped quotes in a section name should be rejected (configobj has no escapes)")
	}
	in = "# top comment\n[Core]\n    Remote = MyRem  # inline\n[cache]\n  type = reflink, copy\n  dir = 'some # dir'\n  empty = \"\"\n"
	c, err := dvcfmt.ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][3]string{{"core", "remote", "MyRem"}, {"cache", "type", "reflink,copy"}, {"cache", "dir", "some # dir"}, {"cache", "empty", ""}} {
		if v, _ := c.Get(kv[0], kv[1]); v != kv[2] {
			t.Errorf("Get(%s,%s) = %q, want %q", kv[0], kv[1], v, kv[2])
		}
	}
	for _, bad := range []string{"key = v\n", "[a\n", "[a]\nnovalue\n", "[a]\nk = 'open\n", "[[nested]]\n", "[a]\n[a]\n", "[a]\nk=1\nk=2\n"} {
		if _, err := dvcfmt.ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%q) succeeded", bad)
		}
	}
}

func TestIgnore(t *testing.T) {
	var ig dvcfmt.Ignore
	ig.Add([]byte("# comment\n\n*.tmp\n!keep.tmp\n/build/\ncache-*/\n"), "")
	ig.Add([]byte("secret.txt\n"), "data/sub")
	for _, c := range []struct {
		path string
		dir  bool
		want bool
	}{
		{"data/x.tmp", false, true},
		{"data/keep.tmp", false, false},
		{"data/x.txt", false, false},
		{"build", true, true},
		{"data/build", true, false},
		{"data/cache-1", true, true},
		{"data/cache-1", false, false},
		{"data/sub/secret.txt", false, true},
		{"data/secret.txt", false, false},
		{"# comment", false, false},
	} {
		if got := ig.Ignored(c.path, c.dir); got != c.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
}

func TestGitignoreEntry(t *testing.T) {
	for in, want := range map[string]string{"data": "/data", "#x": "/\\#x", "a[1]*?!": "/a\\[1\\]\\*\\?\\!", "my data": "/my data", "é": "/é"} {
		if got := dvcfmt.GitignoreEntry(in); got != want {
			t.Errorf("GitignoreEntry(%q) = %q, want %q", in, got, want)
		}
	}
	out, changed := dvcfmt.AddGitignoreEntry([]byte("/a"), "/b")
	if !changed || string(out) != "/a\n/b\n" {
		t.Errorf("AddGitignoreEntry = %q, %v", out, changed)
	}
	if _, changed := dvcfmt.AddGitignoreEntry(out, "/a"); changed {
		t.Error("AddGitignoreEntry duplicated an entry")
	}
}
