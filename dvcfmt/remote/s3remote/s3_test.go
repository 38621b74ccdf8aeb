package s3remote_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
	"github.com/catdog-mlops/catdog/dvcfmt/remote/remotetest"
	"github.com/catdog-mlops/catdog/dvcfmt/remote/s3remote"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

func TestS3Conformance(t *testing.T) {
	srv := testenv.StartS3(t)
	var n atomic.Int64
	remotetest.Run(t, func(t *testing.T) remote.Remote {
		ctx := context.Background()
		r, err := s3remote.New(ctx, fmt.Sprintf("bucket-%d", n.Add(1)), "dvc/store",
			s3remote.WithEndpoint(srv.Endpoint), s3remote.WithRegion(srv.Region),
			s3remote.WithStaticCredentials(srv.AccessKey, srv.SecretKey, ""))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CreateBucket(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"s3://b", "b", ""},
		{"s3://b/", "b", ""},
		{"s3://b/p/q/", "b", "p/q"},
	} {
		b, p, err := s3remote.ParseURL(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", c.in, b, p, err, c.bucket, c.prefix)
		}
	}
	for _, bad := range []string{"", "s3://", "gs://b/p", "/tmp/x"} {
		if _, _, err := s3remote.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) succeeded", bad)
		}
	}
}
