package kube

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// RemoteAddresses lists the remote addresses of the TCP sockets the control-plane processes
// hold right now (from /proc: their socket inodes matched against /proc/net/tcp and tcp6), so
// that a test can check that none is outside loopback. A snapshot, not a trace.
func (c *Cluster) RemoteAddresses() ([]string, error) {
	inodes := map[string]string{} // socket inode -> process name
	for _, p := range c.Procs {
		if done, _ := p.Exited(); done {
			continue
		}
		fdDir := fmt.Sprintf("/proc/%d/fd", p.Cmd.Process.Pid)
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			return nil, err
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = p.Name
			}
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			return nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 10 {
				continue
			}
			name, ok := inodes[f[9]]
			if !ok || f[3] == "0A" { // not ours, or listening
				continue
			}
			ip, port, err := parseProcAddr(f[2])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			out = append(out, name+" -> "+net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		}
	}
	return out, nil
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:1F90" (little-endian 32-bit words).
func parseProcAddr(s string) (net.IP, int, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok || (len(h) != 8 && len(h) != 32) {
		return nil, 0, fmt.Errorf("address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, err
	}
	ip := make(net.IP, len(h)/2)
	for w := 0; w < len(h)/8; w++ {
		v, err := strconv.ParseUint(h[8*w:8*w+8], 16, 32)
		if err != nil {
			return nil, 0, err
		}
		ip[4*w], ip[4*w+1], ip[4*w+2], ip[4*w+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return ip, int(port), nil
}

// CheckLoopbackOnly fails the test when a control-plane process holds a TCP connection to an
// address outside 127.0.0.0/8 (or ::1).
func (c *Cluster) CheckLoopbackOnly(t testing.TB) {
	t.Helper()
	addrs, err := c.RemoteAddresses()
	if err != nil {
		t.Fatalf("kube: %v", err)
	}
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a[strings.Index(a, " -> ")+4:])
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() && !isMappedLoopback(ip) {
			t.Errorf("kube: %s: a connection outside loopback", a)
		}
	}
	sample := addrs[:min(3, len(addrs))]
	t.Logf("kube: %d TCP connections of the control plane, all to loopback (e.g. %v)", len(addrs), sample)
}

func isMappedLoopback(ip net.IP) bool { return ip.To4() != nil && ip.To4()[0] == 127 }
