package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Alertmanager is a real Alertmanager (Debian's prometheus-alertmanager) started for a test on
// 127.0.0.1, clustering off, its state in a temporary directory.
type Alertmanager struct {
	URL  string // http://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT, for Prometheus' alerting targets
	Proc *Process
}

// StartAlertmanager writes config (alertmanager.yml content), starts Alertmanager and waits
// until it is ready. It is stopped at test cleanup.
func StartAlertmanager(t testing.TB, config string) *Alertmanager {
	t.Helper()
	bin := LookPath(t, "prometheus-alertmanager", "install the Debian package: apt-get install prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p := Start(t, bin, []string{
		"--config.file=" + cfg,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--cluster.listen-address=", // no gossip port
		"--log.level=warn",
	}, nil, dir)
	am := &Alertmanager{URL: "http://" + addr, Addr: addr, Proc: p}
	p.WaitHTTP(t, am.URL+"/-/ready", 60*time.Second)
	return am
}
