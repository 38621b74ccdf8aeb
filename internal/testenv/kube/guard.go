package kube

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// guard is the HTTP CONNECT endpoint of kube-apiserver's egress selector: it dials only what
// the route maps to a loopback address.
type guard struct {
	l       net.Listener
	mu      sync.Mutex
	route   Route
	refused []string
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

func startGuard(sock string) (*guard, error) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	g := &guard{l: l}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.serve(conn)
			}()
		}
	}()
	return g, nil
}

func (g *guard) close() {
	g.cancel()
	g.l.Close()
	g.wg.Wait()
}

func (g *guard) setRoute(r Route) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.route = r
}

func (g *guard) refusedTargets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.refused...)
}

func (g *guard) record(target string, why error) {
	g.mu.Lock()
	g.refused = append(g.refused, target+": "+why.Error())
	g.mu.Unlock()
}

func (g *guard) refuse(conn net.Conn, target string, why error) {
	g.record(target, why)
	fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\ntest egress guard refused %s: %v\n", target, why)
}

func (g *guard) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	target := req.Host
	if req.Method != http.MethodConnect {
		g.refuse(conn, target, fmt.Errorf("method %s, want CONNECT", req.Method))
		return
	}
	if _, err := g.backend(target); err != nil {
		g.refuse(conn, target, err)
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	// The tunnel carries plain HTTP (the service and pod proxy to http ports). Each request is
	// routed on its own: kube-apiserver keeps tunnels alive and reuses them, and kwok reuses
	// a deleted pod's IP, so a decision made per connection would outlive the pod it was for.
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(backendKey{}).(string)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "test egress guard: "+err.Error(), http.StatusBadGateway)
		},
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			backend, err := g.backend(target)
			if err != nil {
				g.record(target, err)
				http.Error(w, fmt.Sprintf("test egress guard refused %s: %v", target, err), http.StatusBadGateway)
				return
			}
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, backend)))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return g.ctx },
	}
	l := &oneConnListener{conn: &bufferedConn{Conn: conn, r: br}, done: make(chan struct{})}
	go func() {
		<-g.ctx.Done()
		_ = srv.Close()
	}()
	_ = srv.Serve(l)
	<-l.done // Serve returns at once; the connection is served until it closes
}

type backendKey struct{}

// backend asks the test's route for a loopback address for target.
func (g *guard) backend(target string) (string, error) {
	g.mu.Lock()
	route := g.route
	g.mu.Unlock()
	if route == nil {
		return "", errors.New("no route set by the test")
	}
	ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
	defer cancel()
	backend, err := route(ctx, target)
	if err != nil {
		return "", err
	}
	host, _, err := net.SplitHostPort(backend)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("route to %q is not a loopback address", backend)
	}
	return backend, nil
}

// bufferedConn reads what the CONNECT request's reader buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// oneConnListener hands one connection to http.Server and reports when it is closed.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.used {
		<-l.done
		return nil, net.ErrClosed
	}
	l.used = true
	return &notifyConn{Conn: l.conn, l: l}, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

type notifyConn struct {
	net.Conn
	l *oneConnListener
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.l.once.Do(func() { close(c.l.done) })
	return err
}
