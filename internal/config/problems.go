package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Problems collects what is wrong with a configuration, each problem naming
// its YAML key, so that every one is reported at once.
type Problems struct {
	lines []string
}

// Add reports a problem of key.
func (p *Problems) Add(key, format string, args ...any) {
	p.lines = append(p.lines, key+": "+fmt.Sprintf(format, args...))
}

// Err is nil without problems, else an error listing them, one per line.
func (p *Problems) Err() error {
	if len(p.lines) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  - %s", strings.Join(p.lines, "\n  - "))
}

// positive reports d unless it is a positive duration.
func (p *Problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.Add(key, "must be a positive duration such as 5s, got %v", d)
	}
}

// atLeast reports v unless it is at least min.
func (p *Problems) atLeast(key string, v, min int) {
	if v < min {
		p.Add(key, "must be at least %d, got %d", min, v)
	}
}

// file reports a file that is set but cannot be read.
func (p *Problems) file(key, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		p.Add(key, "%v", err)
	}
}

// CheckHostPort checks a host:port address; the host may be left out when
// hostOptional (a listener on every interface).
func CheckHostPort(addr string, hostOptional bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	if host == "" && !hostOptional {
		return fmt.Errorf("needs a host, got %q", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("has an invalid port in %q", addr)
	}
	return nil
}

// Loopback binds addr to 127.0.0.1 when it names every interface (":8082",
// "0.0.0.0:8082", "[::]:8082"); a specific address is kept.
func Loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // Validate reports it
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Dialable is the address a client on this machine dials to reach a
// listener on addr.
func Dialable(addr string) string { return Loopback(addr) }
