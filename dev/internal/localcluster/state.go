package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// state is the cluster's record, cluster.json in its dir: the ports chosen
// at the first start (kept, so a node restarts where its peers expect it)
// and every process started.
type state struct {
	Ports ports                `json:"ports"`
	Procs map[string]procState `json:"procs"`
}

// ports of the cluster, all on loopback. The Cassandra nodes share their
// two ports, each on its own 127.0.0.N.
type ports struct {
	CassandraNative  int                      `json:"cassandraNative,omitempty"`
	CassandraStorage int                      `json:"cassandraStorage,omitempty"`
	Postgres         int                      `json:"postgres,omitempty"`
	Temporal         map[string]temporalPorts `json:"temporal,omitempty"`
	// App is the HTTP port of each artifactstate process: the API of an api
	// node, the admin listener (/metrics, /readyz) of a worker.
	App map[string]int `json:"app,omitempty"`
	// AppAdmin and AppGRPC are an api node's admin listener and gRPC API.
	AppAdmin map[string]int `json:"appAdmin,omitempty"`
	AppGRPC  map[string]int `json:"appGRPC,omitempty"`
	UI       int            `json:"ui,omitempty"`
}

// procState is one process the cluster started.
type procState struct {
	PID       int       `json:"pid"`
	Argv      []string  `json:"argv"`
	Address   string    `json:"address"`
	Log       string    `json:"log"`
	StartedAt time.Time `json:"startedAt"`
}

func (s *state) used() map[int]bool {
	u := map[int]bool{}
	p := s.Ports
	for _, n := range []int{p.CassandraNative, p.CassandraStorage, p.Postgres, p.UI} {
		u[n] = true
	}
	for _, t := range p.Temporal {
		for _, n := range []int{t.GRPC, t.Membership, t.HTTP, t.Metrics} {
			u[n] = true
		}
	}
	for _, m := range []map[string]int{p.App, p.AppAdmin, p.AppGRPC} {
		for _, n := range m {
			u[n] = true
		}
	}
	return u
}

// freePort returns a port free on every one of hosts and not yet given
// to another part of the cluster.
func (s *state) freePort(hosts ...string) (int, error) {
	used := s.used()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("localcluster: pick a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := !used[port]
		for _, h := range hosts[1:] {
			if !ok {
				break
			}
			other, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				continue
			}
			other.Close()
		}
		ln.Close()
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("localcluster: found no port free on every host")
}

func readState(path string) (*state, error) {
	s := &state{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("localcluster: read state: %w", err)
	default:
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("localcluster: parse %s: %w", path, err)
		}
	}
	if s.Procs == nil {
		s.Procs = map[string]procState{}
	}
	if s.Ports.Temporal == nil {
		s.Ports.Temporal = map[string]temporalPorts{}
	}
	if s.Ports.App == nil {
		s.Ports.App = map[string]int{}
	}
	if s.Ports.AppAdmin == nil {
		s.Ports.AppAdmin = map[string]int{}
	}
	if s.Ports.AppGRPC == nil {
		s.Ports.AppGRPC = map[string]int{}
	}
	return s, nil
}

func writeState(path string, s *state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("localcluster: write state: %w", err)
	}
	return os.Rename(tmp, path)
}

// lockDir takes an exclusive lock on dir/.lock, so two `up` or `down` of
// one cluster never interleave; it waits for the holder until ctx ends.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcluster: lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("localcluster: lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localcluster: another scripts/cluster command holds %s: %w", dir, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals; JSON quoting is valid YAML
	return string(b)
}
