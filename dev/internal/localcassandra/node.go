// Package localcassandra runs a real single-node Apache Cassandra 5.0 for
// development and tests without Docker: the server jars come from Maven
// Central (Fetch) and run under a plain Java 17 JVM (Start), detached from the
// calling process so a CLI can start it and exit.
package localcassandra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ErrNotRunning is returned by Lookup and StopDir when the run dir has no
// live node.
var ErrNotRunning = errors.New("localcassandra: no running node")

// Node is a running Cassandra process.
type Node struct {
	Host        string // a loopback address, 127.0.0.1 unless Options.Host says otherwise
	NativePort  int    // CQL port
	StoragePort int    // internode port
	RunDir      string
	PID         int
	Version     string

	exited <-chan struct{} // closed when the JVM exits; nil if another process started it
}

// CQLAddress is host:port for CQL drivers.
func (n *Node) CQLAddress() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.NativePort)) }

// Start starts a node in opts.RunDir, or returns the node already running
// there. It fetches the jars if needed and returns once a CQL query succeeds.
// Data and address survive restarts of the same run dir: the first start
// picks free ports (unless opts names them) and later starts reuse them. On failure the JVM it launched is killed and the error carries the
// tail of the node's log.
func Start(ctx context.Context, opts Options) (*Node, error) {
	opts = opts.withDefaults()
	if opts.RunDir == "" {
		return nil, errors.New("localcassandra: Options.RunDir is required")
	}
	runDir, err := filepath.Abs(opts.RunDir)
	if err != nil {
		return nil, fmt.Errorf("localcassandra: run dir: %w", err)
	}
	l := layout{runDir}
	heap, err := heapFlags(opts.HeapMin, opts.HeapMax)
	if err != nil {
		return nil, err
	}
	if err := opts.checkRing(); err != nil {
		return nil, err
	}
	javaHome, err := findJava17(opts.JavaHome)
	if err != nil {
		return nil, err
	}
	for _, d := range l.mkdirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("localcassandra: create %s: %w", d, err)
		}
	}
	unlock, err := lockFile(ctx, l.lock())
	if err != nil {
		return nil, err
	}
	defer unlock()

	// Idempotent start: reuse a live node of this run dir.
	if st, err := readState(l); err == nil && isOurProcess(l, st.PID) {
		n := nodeFromState(l, st)
		opts.Logger.Info("node already running; waiting for CQL", "pid", st.PID, "cql", n.CQLAddress())
		readyCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
		defer cancel()
		if err := waitReady(readyCtx, n); err != nil {
			return nil, fmt.Errorf("localcassandra: node pid %d in %s is running but not answering CQL (run stop first?): %w\n%s",
				st.PID, runDir, err, logTail(l))
		}
		return n, nil
	} else if err != nil && !errors.Is(err, errNoState) {
		opts.Logger.Warn("ignoring unreadable state file", "err", err)
	}
	if err := removeState(l); err != nil { // stale: process gone or pid reused
		return nil, err
	}

	libDir, err := Fetch(ctx, opts)
	if err != nil {
		return nil, err
	}
	addr, err := chooseAddress(l, opts)
	if err != nil {
		return nil, err
	}
	if err := writeAddress(l, addr); err != nil {
		return nil, err
	}
	nativePort, storagePort := addr.NativePort, addr.StoragePort
	yml, err := yamlFor(l, opts.Host, nativePort, storagePort, opts.Seeds, opts.InitialToken)
	if err != nil {
		return nil, fmt.Errorf("localcassandra: render cassandra.yaml: %w", err)
	}
	if err := os.WriteFile(l.yaml(), []byte(yml), 0o644); err != nil {
		return nil, fmt.Errorf("localcassandra: write cassandra.yaml: %w", err)
	}
	if err := os.WriteFile(l.logback(), []byte(logbackXML), 0o644); err != nil {
		return nil, fmt.Errorf("localcassandra: write logback.xml: %w", err)
	}
	args, err := jvmArgs(l, libDir, heap)
	if err != nil {
		return nil, err
	}

	// Keep the previous run's log for post-mortems; start a fresh one.
	if err := os.Rename(l.logFile(), l.logFile()+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("localcassandra: rotate log: %w", err)
	}
	logF, err := os.OpenFile(l.logFile(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcassandra: open log: %w", err)
	}
	defer logF.Close() // the child has its own copy of the descriptor

	// Not CommandContext: the JVM must outlive ctx and this process.
	cmd := exec.Command(filepath.Join(javaHome, "bin", "java"), args...)
	cmd.Dir = runDir
	cmd.Env = append(os.Environ(), "JAVA_HOME="+javaHome)
	cmd.Stdin = nil // /dev/null
	// Never inherit our stdout: a $(...) capture in a Makefile would wait for
	// the JVM to close it.
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // own session: no SIGHUP/SIGINT from our terminal
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localcassandra: start java: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reap; exit status is in the log

	n := &Node{Host: opts.Host, NativePort: nativePort, StoragePort: storagePort, RunDir: runDir,
		PID: cmd.Process.Pid, Version: opts.Version, exited: exited}
	opts.Logger.Info("launched Cassandra", "pid", n.PID, "host", n.Host, "cql", n.CQLAddress(), "storage_port", storagePort,
		"version", opts.Version, "log", l.logFile())
	// Record the pid before waiting so a concurrent stop can find the process.
	if err := writeState(l, state{PID: n.PID, Host: n.Host, NativePort: nativePort, StoragePort: storagePort,
		Version: opts.Version, StartedAt: started.UTC()}); err != nil {
		killAndWait(n)
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := waitReady(readyCtx, n); err != nil {
		killAndWait(n)
		_ = removeState(l)
		return nil, fmt.Errorf("localcassandra: node did not become ready: %w\n--- last lines of %s ---\n%s",
			err, l.logFile(), logTail(l))
	}
	opts.Logger.Info("Cassandra ready", "cql", n.CQLAddress(), "seconds", roundSec(time.Since(started)))
	return n, nil
}

// Lookup returns the live node of runDir, or ErrNotRunning. A node whose
// process is alive but does not answer CQL is an error (it may be starting).
func Lookup(ctx context.Context, runDir string) (*Node, error) {
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return nil, err
	}
	l := layout{runDir}
	st, err := readState(l)
	if errors.Is(err, errNoState) {
		return nil, ErrNotRunning
	}
	if err != nil {
		return nil, err
	}
	if !isOurProcess(l, st.PID) {
		return nil, ErrNotRunning
	}
	n := nodeFromState(l, st)
	if err := ping(ctx, n); err != nil {
		return n, fmt.Errorf("localcassandra: pid %d is running but CQL on %s does not answer: %w", n.PID, n.CQLAddress(), err)
	}
	return n, nil
}

// StopDir stops the node recorded in runDir. It returns ErrNotRunning if
// there is none (after cleaning a stale state file).
func StopDir(ctx context.Context, runDir string) error {
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return err
	}
	l := layout{runDir}
	st, err := readState(l)
	if errors.Is(err, errNoState) {
		return ErrNotRunning
	}
	if err != nil {
		return err
	}
	if !isOurProcess(l, st.PID) {
		if err := removeState(l); err != nil {
			return err
		}
		return ErrNotRunning
	}
	return nodeFromState(l, st).Stop(ctx)
}

const (
	stopGrace = 60 * time.Second // SIGTERM → SIGKILL (a clean shutdown flushes memtables)
	killWait  = 10 * time.Second
)

// Stop terminates the node: SIGTERM, then SIGKILL after a grace period or
// when ctx ends. It only signals the recorded pid, and only if that process
// is still this run dir's CassandraDaemon. The state and pid files are removed.
func (n *Node) Stop(ctx context.Context) error {
	l := layout{n.RunDir}
	if !isOurProcess(l, n.PID) {
		return removeStateOf(l, n.PID) // already gone
	}
	if err := syscall.Kill(n.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcassandra: SIGTERM pid %d: %w", n.PID, err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	if waitExit(graceCtx, n) != nil {
		killAndWait(n)
		if alive(n.PID) {
			return fmt.Errorf("localcassandra: pid %d survived SIGKILL", n.PID)
		}
	}
	return removeStateOf(l, n.PID)
}

// removeStateOf removes the state files if they still describe pid, so a
// stale Node never deletes the record of a newer node in the same run dir.
func removeStateOf(l layout, pid int) error {
	st, err := readState(l)
	if errors.Is(err, errNoState) || (err == nil && st.PID != pid) {
		return nil
	}
	return removeState(l) // ours, or unreadable
}

// killAndWait SIGKILLs the node and waits briefly for it to disappear.
func killAndWait(n *Node) {
	if !alive(n.PID) {
		return
	}
	_ = syscall.Kill(n.PID, syscall.SIGKILL) // ESRCH: already gone, fine
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	_ = waitExit(ctx, n)
}

// waitExit waits until the process is gone (or a zombie).
func waitExit(ctx context.Context, n *Node) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.exited != nil {
			select {
			case <-n.exited:
				return nil
			default:
			}
		}
		if !alive(n.PID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.exited: // nil channel blocks forever: fine
			return nil
		case <-tick.C:
		}
	}
}

// waitReady polls until a CQL query succeeds, the JVM exits, or ctx ends.
func waitReady(ctx context.Context, n *Node) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if !alive(n.PID) {
			return fmt.Errorf("java process %d exited", n.PID)
		}
		// The CQL port opens last; a cheap dial avoids building sessions early.
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "tcp", n.CQLAddress()); err != nil {
			lastErr = err
		} else {
			c.Close()
			if lastErr = ping(ctx, n); lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-n.exited:
			return fmt.Errorf("java process %d exited", n.PID)
		case <-tick.C:
		}
	}
}

// ping runs SELECT release_version FROM system.local.
func ping(ctx context.Context, n *Node) error {
	s, err := newSession(n, "")
	if err != nil {
		return err
	}
	defer s.Close()
	var v string
	return s.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v)
}

// newSession opens a gocql session to the node, optionally bound to keyspace.
// Settings suit a single local node.
func newSession(n *Node, keyspace string) (*gocql.Session, error) {
	c := gocql.NewCluster(n.Host)
	c.Port = n.NativePort
	c.Keyspace = keyspace
	c.Consistency = gocql.One
	c.NumConns = 1
	c.Timeout = 10 * time.Second
	c.ConnectTimeout = 5 * time.Second
	c.DisableInitialHostLookup = true // one node: no need to read system.peers
	// No negotiation: a node still starting rejects the newer protocol
	// versions and logs a "Protocol exception" for each try.
	c.ProtoVersion = 4
	return c.CreateSession()
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// isOurProcess reports whether pid is alive and is the CassandraDaemon
// configured from this run dir (guards against pid reuse).
func isOurProcess(l layout, pid int) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	var daemon, config bool
	for _, a := range args {
		daemon = daemon || a == mainClass
		config = config || a == "-Dcassandra.config="+l.yamlURL()
	}
	return daemon && config
}

func nodeFromState(l layout, st state) *Node {
	return &Node{Host: st.Host, NativePort: st.NativePort, StoragePort: st.StoragePort,
		RunDir: l.dir, PID: st.PID, Version: st.Version}
}

// logTail returns the last 40 lines of the node's log.
func logTail(l layout) string { return LogTail(l.logFile(), 64<<10, 40, "") }

// LogTail returns, for error messages, the last n lines within the final
// maxBytes of the log file at path, or a note saying why it cannot be read.
// When after is not empty, only what follows its last occurrence at the
// start of a line is kept (a marker a launcher writes at each start).
func LogTail(path string, maxBytes int64, n int, after string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(read log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	if after != "" {
		if i := bytes.LastIndex(b, []byte("\n"+after)); i >= 0 {
			b = b[i+1:]
		}
	}
	return tail(b, n)
}
