package testenv

import (
	"fmt"
	"testing"
	"time"
)

// S3 is an S3-compatible server (moto in server mode, from the project venv) on 127.0.0.1.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Proc      *Process
}

// StartS3 starts `moto_server` on a free port and waits until it answers. It is stopped at
// test cleanup. Buckets must be created by the test.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := VenvBin(t, "moto_server")
	port := FreePort(t)
	p := Start(t, bin, []string{"-H", "127.0.0.1", "-p", fmt.Sprint(port)}, nil, t.TempDir())
	s := &S3{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKey: "testing",
		SecretKey: "testing",
		Region:    "us-east-1",
		Proc:      p,
	}
	p.WaitHTTP(t, s.Endpoint+"/moto-api/", 60*time.Second)
	return s
}

// Env returns the AWS environment variables that point SDKs (and dvc-s3) at this server's
// credentials.
func (s *S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_REGION=" + s.Region,
	}
}
