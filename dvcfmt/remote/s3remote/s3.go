// Package s3remote is a DVC remote on S3 or an S3-compatible server (dvc's `s3://bucket/prefix`
// URLs with the dvc-s3 options endpointurl, region, access_key_id, secret_access_key,
// session_token, profile). It implements remote.Remote, remote.Lister and remote.Deleter.
package s3remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/catdog-mlops/catdog/dvcfmt/remote"
)

// MaxBufferedPut bounds how many bytes Put buffers in memory when its reader cannot seek.
const MaxBufferedPut = 64 << 20

// Remote is an S3 bucket and key prefix.
type Remote struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
}

var (
	_ remote.Remote  = (*Remote)(nil)
	_ remote.Lister  = (*Remote)(nil)
	_ remote.Deleter = (*Remote)(nil)
)

type options struct {
	endpoint     string
	region       string
	accessKey    string
	secretKey    string
	sessionToken string
	profile      string
	client       *s3.Client
	httpClient   *http.Client
}

// Option configures New.
type Option func(*options)

// WithEndpoint talks to an S3-compatible server at url (path-style addressing). The default
// is AWS itself, or $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL when set.
func WithEndpoint(url string) Option { return func(o *options) { o.endpoint = url } }

// WithRegion sets the signing region. The default comes from the AWS environment and shared
// config, else "us-east-1".
func WithRegion(r string) Option { return func(o *options) { o.region = r } }

// WithStaticCredentials uses these keys instead of the AWS default credential chain (the
// AWS_* environment variables, shared credentials file, ...). The default is the chain.
func WithStaticCredentials(accessKey, secretKey, sessionToken string) Option {
	return func(o *options) { o.accessKey, o.secretKey, o.sessionToken = accessKey, secretKey, sessionToken }
}

// WithProfile selects a shared-config profile. The default is $AWS_PROFILE or "default".
func WithProfile(p string) Option { return func(o *options) { o.profile = p } }

// WithHTTPClient sets the HTTP client (for tests and fault injection). The default is the
// SDK's client.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithClient uses a ready S3 client and ignores the other options. Default: none.
func WithClient(c *s3.Client) Option { return func(o *options) { o.client = c } }

// ParseURL splits "s3://bucket/prefix" into bucket and prefix.
func ParseURL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("not an s3:// URL: %q", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("s3 URL %q has no bucket", u)
	}
	return bucket, strings.Trim(prefix, "/"), nil
}

// New returns the remote for bucket/prefix.
func New(ctx context.Context, bucket, prefix string, opts ...Option) (*Remote, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := &Remote{bucket: bucket, prefix: strings.Trim(prefix, "/")}
	if r.prefix != "" {
		r.prefix += "/"
	}
	if o.client != nil {
		r.client = o.client
		return r, nil
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	}
	if o.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.region))
	}
	if o.profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(o.profile))
	}
	if o.accessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.accessKey, o.secretKey, o.sessionToken)))
	}
	if o.httpClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(o.httpClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	// S3-compatible servers often predate the flexible-checksum headers.
	cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	r.client = s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
			so.UsePathStyle = true
		}
	})
	return r, nil
}

func (r *Remote) String() string { return "s3://" + r.bucket + "/" + strings.TrimSuffix(r.prefix, "/") }

func (r *Remote) key(k string) string { return r.prefix + k }

func notFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchKey", "404":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// Stat implements remote.Remote.
func (r *Remote) Stat(ctx context.Context, key string) (remote.Info, error) {
	out, err := r.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(r.key(key))})
	if err != nil {
		if notFound(err) {
			return remote.Info{}, fmt.Errorf("%s: %w", key, remote.ErrNotExist)
		}
		return remote.Info{}, fmt.Errorf("s3 head %s: %w", key, err)
	}
	return remote.Info{Key: key, Size: aws.ToInt64(out.ContentLength)}, nil
}

// Open implements remote.Remote.
func (r *Remote) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := r.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(r.key(key))})
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%s: %w", key, remote.ErrNotExist)
		}
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	return out.Body, nil
}

// Put implements remote.Remote. S3 stores an object only when the whole body arrived.
func (r *Remote) Put(ctx context.Context, key string, body io.Reader, size int64) error {
	rs, ok := body.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(io.LimitReader(body, MaxBufferedPut+1))
		if err != nil {
			return fmt.Errorf("s3 put %s: %w", key, err)
		}
		if len(b) > MaxBufferedPut {
			return fmt.Errorf("s3 put %s: unseekable body larger than %d bytes", key, MaxBufferedPut)
		}
		rs, size = bytes.NewReader(b), int64(len(b))
	}
	_, err := r.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &r.bucket, Key: aws.String(r.key(key)), Body: rs, ContentLength: aws.Int64(size),
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", key, err)
	}
	return nil
}

// Delete implements remote.Deleter.
func (r *Remote) Delete(ctx context.Context, key string) error {
	if _, err := r.Stat(ctx, key); err != nil {
		return err
	}
	_, err := r.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &r.bucket, Key: aws.String(r.key(key))})
	if err != nil {
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	return nil
}

// List implements remote.Lister.
func (r *Remote) List(ctx context.Context, prefix string, fn func(remote.Info) error) error {
	p := s3.NewListObjectsV2Paginator(r.client, &s3.ListObjectsV2Input{
		Bucket: &r.bucket, Prefix: aws.String(r.key(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list %s: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			k := strings.TrimPrefix(aws.ToString(obj.Key), r.prefix)
			if err := fn(remote.Info{Key: k, Size: aws.ToInt64(obj.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateBucket creates the remote's bucket (used by tests against a fresh S3 server).
func (r *Remote) CreateBucket(ctx context.Context) error {
	_, err := r.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &r.bucket})
	if err != nil {
		return fmt.Errorf("s3 create bucket %s: %w", r.bucket, err)
	}
	return nil
}
