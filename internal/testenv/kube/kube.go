// Package kube starts a real Kubernetes control plane for a test, on 127.0.0.1: etcd,
// kube-apiserver (RBAC, token authentication), kube-controller-manager (every controller,
// node-lifecycle included), kube-scheduler and kwok as the nodes — the binaries
// scripts/setup-k8s.sh builds into the cache (CATDOG_K8S_BIN). It is a package of its own, not
// part of testenv, so that only the tests that need a cluster link client-go.
//
// Addresses: every process listens on 127.0.0.1, and the node IPs and the service range are
// loopback addresses. Pod IPs cannot be: the API server refuses loopback addresses in
// EndpointSlices (ValidateEndpointIP), so kwok gives pods addresses from PodCIDR (10.244.0.0/16
// by default), which nothing may dial. The only process that would dial a pod is kube-apiserver
// (service and pod proxy, kubelet connections); it is started with an egress selector that
// sends all of its cluster traffic as HTTP CONNECT requests over a unix socket to this
// package's guard, which dials only loopback addresses: the test's Route maps a pod address to
// a real process on 127.0.0.1 (e.g. a catdog serve), everything else is refused and recorded.
package kube

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/catdog-mlops/catdog/internal/cachedir"
	"github.com/catdog-mlops/catdog/internal/testenv"
)

// Version is the Kubernetes release scripts/setup-k8s.sh builds (K8S_VERSION there).
const Version = "v1.37.2"

// Address ranges of the test cluster. NodeIP and ServiceCIDR are loopback; PodCIDR is not (see
// the package comment) and is never dialed.
const (
	ServiceCIDR = "127.96.0.0/24"
	NodeIPBase  = "127.0.100."
	PodCIDR     = "10.244.0.0/16"
)

// Binaries lists the executables the control plane needs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"}

// BinDir returns the directory of the control-plane binaries ($CATDOG_K8S_BIN, default
// $CATDOG_CACHE/k8s-VERSION/bin), failing the test when one is missing.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CATDOG_K8S_BIN")
	if dir == "" {
		var err error
		if dir, err = cachedir.Join("k8s-"+Version, "bin"); err != nil {
			t.Fatalf("kube: %v", err)
		}
	}
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("kube: %s not found in %s; run `make test` (or `make k8s-tools`, which runs scripts/setup-k8s.sh): %v", b, dir, err)
		}
	}
	return dir
}

// Options configure Start.
type Options struct {
	// Nodes is the number of kwok nodes (default 2).
	Nodes int
}

// Route maps a CONNECT target of kube-apiserver (a pod's "ip:port") to a loopback address
// ("127.0.0.1:port") of a real process, or returns an error to refuse it.
type Route func(ctx context.Context, target string) (string, error)

// Cluster is a running control plane.
type Cluster struct {
	Dir    string // run directory: kubeconfigs, certificates, stage files
	Bin    string // directory of the binaries (kubectl is there)
	Server string // https://127.0.0.1:PORT
	// AdminKubeconfig authenticates as a member of system:masters.
	AdminKubeconfig string
	Admin           kubernetes.Interface
	CAFile          string
	Nodes           []string

	Procs []*testenv.Process // in start order

	guard *guard
}

// Start starts the control plane and waits until its nodes are Ready and schedulable. The
// processes stop at cleanup, in reverse start order.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	bin := BinDir(t)
	t0 := time.Now()
	// a short directory: the egress socket path must fit sun_path (108 bytes)
	dir, err := os.MkdirTemp("", "kube-")
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{Dir: dir, Bin: bin}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("kube: %v", err)
		}
	}

	// service-account signing key and the admin token
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	must(os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	adminToken := randomToken()
	must(os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(adminToken+",admin,admin,system:masters\n"), 0o600))

	// the egress guard: kube-apiserver's only way to reach pods and nodes
	c.guard, err = startGuard(filepath.Join(dir, "egress.sock"))
	must(err)
	t.Cleanup(c.guard.close)
	must(os.WriteFile(filepath.Join(dir, "egress.yaml"), []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: `+filepath.Join(dir, "egress.sock")+"\n"), 0o644))

	// etcd
	ep, pp := testenv.FreePort(t), testenv.FreePort(t)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ep)
	peer := "http://127.0.0.1:" + strconv.Itoa(pp)
	etcd := testenv.Start(t, filepath.Join(bin, "etcd"), []string{"--name", "test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer,
		"--listen-metrics-urls", "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"--unsafe-no-fsync", "--log-level", "warn"}, nil, dir)
	c.Procs = append(c.Procs, etcd)
	etcd.WaitHTTP(t, etcdURL+"/health", 30*time.Second)

	// kube-apiserver
	ap := testenv.FreePort(t)
	c.Server = "https://127.0.0.1:" + strconv.Itoa(ap)
	certs := filepath.Join(dir, "certs")
	api := testenv.Start(t, filepath.Join(bin, "kube-apiserver"), []string{
		"--etcd-servers=" + etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ap), "--cert-dir=" + certs,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC", "--service-cluster-ip-range=" + ServiceCIDR,
		"--egress-selector-config-file=" + filepath.Join(dir, "egress.yaml"),
		// a loopback advertise address is refused by the endpoint reconciler (the
		// kubernetes Service would get a loopback endpoint): nothing in the cluster needs it
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true", "--enable-priority-and-fairness=false", "--profiling=false",
	}, nil, dir)
	c.Procs = append(c.Procs, api)
	c.CAFile = filepath.Join(certs, "apiserver.crt")
	if err := waitReadyz(c.Server, adminToken, api, 90*time.Second); err != nil {
		t.Fatalf("kube: kube-apiserver: %v\n--- output ---\n%s", err, tail(api.Output(), 4000))
	}
	c.AdminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	must(c.writeKubeconfig(c.AdminKubeconfig, "admin", adminToken, ""))
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	must(err)
	admin, err := kubernetes.NewForConfig(cfg)
	must(err)
	c.Admin = admin

	kc := "--kubeconfig=" + c.AdminKubeconfig
	kcm := testenv.Start(t, filepath.Join(bin, "kube-controller-manager"), []string{kc,
		"--authentication-kubeconfig=" + c.AdminKubeconfig, "--authorization-kubeconfig=" + c.AdminKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
		"--service-account-private-key-file=" + filepath.Join(dir, "sa.key"), "--root-ca-file=" + c.CAFile,
		"--use-service-account-credentials=false", "--controllers=*",
		"--node-monitor-period=1s", "--concurrent-deployment-syncs=2",
	}, nil, dir)
	c.Procs = append(c.Procs, kcm)
	sched := testenv.Start(t, filepath.Join(bin, "kube-scheduler"), []string{kc,
		"--authentication-kubeconfig=" + c.AdminKubeconfig, "--authorization-kubeconfig=" + c.AdminKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
	}, nil, dir)
	c.Procs = append(c.Procs, sched)

	// kwok with the cached stages (kwok's fast node/pod stages and catdog's never-ready stage)
	stages, err := filepath.Glob(filepath.Join(bin, "..", "kwok-stage", "*.yaml"))
	must(err)
	if len(stages) == 0 {
		t.Fatalf("kube: no kwok stage files next to %s; run `make k8s-tools`", bin)
	}
	var all []string
	for _, s := range stages {
		b, err := os.ReadFile(s)
		must(err)
		all = append(all, strings.TrimPrefix(string(b), "---\n"))
	}
	stageFile := filepath.Join(dir, "kwok-stages.yaml")
	must(os.WriteFile(stageFile, []byte(strings.Join(all, "\n---\n")), 0o644))
	kwok := testenv.Start(t, filepath.Join(bin, "kwok"), []string{kc, "--config=" + stageFile,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40", "--cidr=" + PodCIDR, "--node-ip=" + NodeIPBase + "1",
	}, nil, dir)
	c.Procs = append(c.Procs, kwok)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range o.Nodes {
		name := "kwok-node-" + strconv.Itoa(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels:      map[string]string{corev1.LabelHostname: name, "type": "kwok", corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}},
			Status: corev1.NodeStatus{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
			},
		}
		if _, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("kube: create node %s: %v", name, err)
		}
		c.Nodes = append(c.Nodes, name)
	}
	if err := c.waitNodes(ctx); err != nil {
		t.Fatalf("kube: %v\n--- kwok ---\n%s\n--- kube-controller-manager ---\n%s", err, tail(kwok.Output(), 3000), tail(kcm.Output(), 3000))
	}
	t.Logf("kube: control plane %s (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, %d nodes) ready in %v",
		Version, o.Nodes, time.Since(t0).Round(10*time.Millisecond))
	return c
}

// waitNodes waits until every node is Ready and carries no taint.
func (c *Cluster) waitNodes(ctx context.Context) error {
	for {
		list, err := c.Admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		ready := 0
		var state []string
		if err == nil {
			for _, n := range list.Items {
				ok := false
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
						ok = true
					}
				}
				if ok && len(n.Spec.Taints) == 0 {
					ready++
				}
				state = append(state, fmt.Sprintf("%s ready=%v taints=%v", n.Name, ok, n.Spec.Taints))
			}
		}
		if err == nil && ready == len(c.Nodes) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not Ready and untainted: %v (%v)", state, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SetRoute sets how kube-apiserver's connections to pods are served (nil refuses them all).
func (c *Cluster) SetRoute(r Route) { c.guard.setRoute(r) }

// Refused lists the CONNECT targets the guard refused so far.
func (c *Cluster) Refused() []string { return c.guard.refusedTargets() }

// Kubectl runs the cluster's kubectl with kubeconfig and returns its combined output.
func (c *Cluster) Kubectl(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Deployer creates namespace ns, applies the deployer identity of rbacFile (the shipped
// deploy/k8s/deployer-rbac.yaml: ServiceAccount, Role, RoleBinding) moved into ns, and returns
// a kubeconfig that authenticates as that ServiceAccount (a TokenRequest token) with ns as
// its namespace — bound to nothing but that Role.
func (c *Cluster) Deployer(t testing.TB, ns, rbacFile string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kube: create namespace %s: %v", ns, err)
	}
	objs, err := decodeFile(rbacFile)
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	sa := ""
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ServiceAccount:
			o.Namespace, sa = ns, o.Name
			_, err = c.Admin.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			o.Namespace = ns
			_, err = c.Admin.RbacV1().Roles(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			o.Namespace = ns
			for i := range o.Subjects {
				o.Subjects[i].Namespace = ns
			}
			_, err = c.Admin.RbacV1().RoleBindings(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("%s: unexpected object %T (want ServiceAccount, Role, RoleBinding)", rbacFile, o)
		}
		if err != nil {
			t.Fatalf("kube: apply %s: %v", rbacFile, err)
		}
	}
	if sa == "" {
		t.Fatalf("kube: %s has no ServiceAccount", rbacFile)
	}
	exp := int64(3600)
	tr, err := c.Admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kube: token for %s/%s: %v", ns, sa, err)
	}
	path := filepath.Join(c.Dir, ns+"-"+sa+".kubeconfig")
	if err := c.writeKubeconfig(path, "system:serviceaccount:"+ns+":"+sa, tr.Status.Token, ns); err != nil {
		t.Fatalf("kube: %v", err)
	}
	return path
}

func decodeFile(path string) ([]runtime.Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if strings.TrimSpace(stripComments(string(doc))) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, obj)
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (c *Cluster) writeKubeconfig(path, user, token, namespace string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthority: c.CAFile}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = "test"
	return clientcmd.WriteToFile(*cfg, path)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// waitReadyz polls /readyz with the admin token until 200 (the serving certificate is the
// self-signed one the server writes at start, so the poll does not verify it; the
// kubeconfigs do).
func waitReadyz(server, token string, p *testenv.Process, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if done, err := p.Exited(); done {
			return fmt.Errorf("exited: %v", err)
		}
		req, _ := http.NewRequest(http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %.300s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("/readyz not 200 within %v (last: %s)", timeout, last)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
