package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a real distribution registry (Debian's docker-registry) started for a test.
type Registry struct {
	// Host is "127.0.0.1:PORT"; image references are Host + "/repo:tag" (plain http, which
	// go-containerregistry and skopeo --tls-verify=false use for loopback addresses).
	Host string
	// Dir is the registry's storage root.
	Dir  string
	Proc *Process
}

// StartRegistry starts /usr/bin/docker-registry on a free 127.0.0.1 port with filesystem
// storage in a temp dir, no auth, deletes enabled, and waits until /v2/ answers.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := LookPath(t, "docker-registry", "apt-get install docker-registry")
	dir := t.TempDir()
	port := FreePort(t)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%d
`, filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("testenv: registry config: %v", err)
	}
	p := Start(t, bin, []string{"serve", cfgPath}, nil, dir)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	p.WaitHTTP(t, "http://"+host+"/v2/", 30*time.Second)
	return &Registry{Host: host, Dir: dir, Proc: p}
}
