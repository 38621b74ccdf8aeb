package mlflowclient

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/catdog-mlops/catdog/internal/testenv"
)

// server is one real mlflow server shared by the tests of this package (started in TestMain).
var server *testenv.MLflowServer

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMLflow(m, "mlflowclient", &server)) }

func newTestClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(server.URI, append([]Option{WithRetry(RetryPolicy{MaxRetries: 2, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// uniq returns a name unique to this test.
func uniq(t *testing.T, prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
}

// addMetrics records metric points as the Python reader expects them.
func addMetrics(e *testenv.MLflowExpectation, ms ...Metric) {
	for _, m := range ms {
		e.AddMetric(m.Key, m.Step, float64(m.Value), m.Timestamp)
	}
}
