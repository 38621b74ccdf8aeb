package kube_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/catdog-mlops/catdog/internal/testenv/kube"
)

// TestControlPlane checks the address choices against the real API server and the egress
// guard: a Service gets a loopback ClusterIP, nodes have loopback addresses, a Deployment's
// pods run on the kwok nodes and fill an EndpointSlice, a loopback pod address is refused in
// an EndpointSlice (why PodCIDR is not loopback), and the service proxy reaches a real HTTP
// server on 127.0.0.1 only through the guard's route.
func TestControlPlane(t *testing.T) {
	c := kube.Start(t, kube.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := c.Admin
	ns := "plane"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	loop4 := netip.MustParsePrefix("127.0.0.0/8")
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && !loop4.Contains(netip.MustParseAddr(a.Address)) {
				t.Errorf("node %s address %s is not loopback", n.Name, a.Address)
			}
		}
	}

	// a real HTTP server on loopback, reached through the guard
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s", r.URL.Path) })}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	c.SetRoute(func(_ context.Context, target string) (string, error) {
		if strings.HasPrefix(target, "10.244.") && strings.HasSuffix(target, ":8080") {
			return l.Addr().String(), nil
		}
		return "", fmt.Errorf("unknown target %s", target)
	})

	labels := map[string]string{"app": "web"}
	two := int32(2)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "example.test/web@sha256:" + strings.Repeat("1", 64),
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !netip.MustParsePrefix(kube.ServiceCIDR).Contains(netip.MustParseAddr(svc.Spec.ClusterIP)) {
		t.Errorf("ClusterIP %s outside %s", svc.Spec.ClusterIP, kube.ServiceCIDR)
	}
	var ready int
	for ready < 2 {
		slices, err := cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			t.Fatal(err)
		}
		ready = 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready += len(e.Addresses)
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("EndpointSlices of web: %d ready addresses, want 2", ready)
		}
		time.Sleep(200 * time.Millisecond)
	}

	body, err := cs.CoreV1().Services(ns).ProxyGet("http", "web", "http", "/ping", nil).DoRaw(ctx)
	if err != nil || string(body) != "hello from /ping" {
		t.Fatalf("service proxy through the guard: %q, %v (refused: %v)", body, err, c.Refused())
	}

	// loopback endpoint addresses are invalid: why pod addresses cannot be loopback
	_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "loop"}, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.5"}}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("an EndpointSlice with a loopback address: %v, want invalid (loopback)", err)
	}

	// a target the route does not know is refused and recorded, never dialed
	c.SetRoute(nil)
	if _, err := cs.CoreV1().Services(ns).ProxyGet("http", "web", "http", "/ping", nil).DoRaw(ctx); err == nil {
		t.Errorf("service proxy without a route answered")
	}
	if len(c.Refused()) == 0 {
		t.Errorf("the guard recorded no refused target")
	}
	c.CheckLoopbackOnly(t)
}
