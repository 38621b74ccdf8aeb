package repo_test

import (
	"strings"

	"github.com/catdog-mlops/catdog/dvcfmt"
)

func dvcfmtHash(s string) (string, int64, error) {
	return dvcfmt.HashReader(strings.NewReader(s), false)
}
