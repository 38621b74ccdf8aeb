package modeldir_test

import (
	"testing"

	"github.com/catdog-mlops/catdog/drift"
	"github.com/catdog-mlops/catdog/model/modeldir"
)

func TestDriftProfileName(t *testing.T) {
	if modeldir.DriftProfile != drift.ProfileFile {
		t.Fatalf("modeldir.DriftProfile %q != drift.ProfileFile %q", modeldir.DriftProfile, drift.ProfileFile)
	}
}
