package dvcfmt_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// TestDos2UnixMatchesDVCData checks the legacy md5-dos2unix hash against dvc-data itself.
func TestDos2UnixMatchesDVCData(t *testing.T) {
	py := testenv.VenvBin(t, "python")
	inputs := []string{
		"", "plain\n", "a\r\nb\r\n", "\x00binary\r\n", "lone\rcr\r\n",
		strings.Repeat("text line\r\n", 200000),            // > 1 MiB: chunked
		strings.Repeat("\xff\xfe\xfd", 400) + "x\r\n",      // mostly non-text
		strings.Repeat("a", 1<<20-1) + "\r\n" + "tail\r\n", // CRLF across the chunk boundary
	}
	for i, in := range inputs {
		cmd := exec.Command(py, "-c", `import sys, io
from dvc_data.hashfile.hash import fobj_md5
data = sys.stdin.buffer.read()
print(fobj_md5(io.BytesIO(data), name="md5-dos2unix"), fobj_md5(io.BytesIO(data), name="md5"))`)
		cmd.Stdin = strings.NewReader(in)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		want := strings.Fields(string(out))
		legacy, _, _ := dvcfmt.HashReader(bytes.NewReader([]byte(in)), true)
		plain, _, _ := dvcfmt.HashReader(bytes.NewReader([]byte(in)), false)
		if legacy != want[0] || plain != want[1] {
			t.Errorf("input %d: got dos2unix %s md5 %s, dvc-data says %s %s", i, legacy, plain, want[0], want[1])
		}
	}
}
