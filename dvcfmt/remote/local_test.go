package remote_test

import (
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
	"github.com/catdog-mlops/catdog/dvcfmt/remote/remotetest"
)

func TestLocalConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remote.Remote { return remote.NewLocal(t.TempDir()) })
}
