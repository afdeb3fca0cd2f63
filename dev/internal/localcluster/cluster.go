// Package localcluster runs the production shape of artifactstate on one
// machine, without Docker: a three-node Cassandra ring (one JVM per node,
// on 127.0.0.1-3), the official Temporal server built from the pinned
// module as one process per service (frontend, two history hosts, matching,
// internal worker) on that ring with visibility on a private PostgreSQL,
// two `artifactstate worker` and two `artifactstate api` processes of the
// real binary, and the Temporal Web UI. Everything listens on loopback and
// keeps its ports, data, logs and pids in one directory. The Temporal
// configuration comes from the files docker-compose.yml and the Helm values
// use (see Deployment).
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Options configure a cluster. Only Dir is required.
type Options struct {
	// Dir holds everything: ports, data, logs, pids (cluster.json).
	Dir string
	// RepoRoot is the repository (deployment files, Go module); default:
	// the nearest parent of the working directory holding go.mod and
	// docker-compose.yml.
	RepoRoot string
	// BinDir is where the Temporal server, its schema tools and the Web UI
	// are built; default Dir/bin.
	BinDir string
	// Artifactstate is the binary of the api and worker processes; default
	// RepoRoot/bin/artifactstate-prod (`make build`): the production binary,
	// the one the container image ships.
	Artifactstate string
	// Workers and APIs: how many of each artifactstate role; default 2 each.
	Workers, APIs int
	// NoWebUI leaves the Temporal Web UI out.
	NoWebUI bool
	// CassandraHeap is each node's maximum JVM heap; default 768m.
	CassandraHeap string
	// AppEnv is added to the environment of the artifactstate processes
	// (after compose's, before the cluster's addresses).
	AppEnv map[string]string
	// Logger receives progress, including each phase's duration.
	Logger *slog.Logger
}

// Cluster is a cluster directory and what runs from it.
type Cluster struct {
	opts Options
	dir  string
	repo string
	bin  string
	dep  *Deployment
	log  *slog.Logger

	mu     sync.Mutex
	st     *state
	exited map[string]<-chan struct{} // processes this Cluster started
}

// Open resolves the paths and reads the deployment files and the cluster's
// state; it starts nothing.
func Open(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("localcluster: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = findRepoRoot(); err != nil {
			return nil, err
		}
	}
	repo, err := filepath.Abs(opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Join(dir, "bin")
	}
	bin, err := filepath.Abs(opts.BinDir)
	if err != nil {
		return nil, err
	}
	if opts.Artifactstate == "" {
		opts.Artifactstate = filepath.Join(repo, "bin", "artifactstate-prod")
	}
	if opts.Artifactstate, err = filepath.Abs(opts.Artifactstate); err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.APIs <= 0 {
		opts.APIs = 2
	}
	if opts.CassandraHeap == "" {
		opts.CassandraHeap = "768m"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dep, err := LoadDeployment(repo)
	if err != nil {
		return nil, err
	}
	if dep.ReplicationFactor > cassandraNodes {
		return nil, fmt.Errorf("localcluster: %s asks for replication factor %d; the ring has %d nodes",
			productionValues, dep.ReplicationFactor, cassandraNodes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	st, err := readState(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return nil, err
	}
	return &Cluster{opts: opts, dir: dir, repo: repo, bin: bin, dep: dep, log: opts.Logger,
		st: st, exited: map[string]<-chan struct{}{}}, nil
}

// findRepoRoot walks up from the working directory to the repository root.
func findRepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		_, e1 := os.Stat(filepath.Join(d, "go.mod"))
		_, e2 := os.Stat(filepath.Join(d, composeFile))
		if e1 == nil && e2 == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("localcluster: no repository root (go.mod and docker-compose.yml) above the working directory; set Options.RepoRoot")
		}
		d = parent
	}
}

// Dir is the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// Deployment is the configuration read from the deployment files.
func (c *Cluster) Deployment() *Deployment { return c.dep }

// Up starts whatever of the cluster is not running and waits until all of
// it is ready; parts already running are reused. Safe to call again.
func (c *Cluster) Up(ctx context.Context) error {
	unlock, err := lockDir(ctx, c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	began := time.Now()
	if err := c.allocatePorts(); err != nil {
		return err
	}
	if down := c.notRunning(); len(down) == 0 {
		c.log.Info("every process of the cluster is already running; checking health")
		return c.waitAllHealthy(ctx, time.Minute)
	} else if len(down) < len(c.components()) {
		c.log.Info("some processes are already running; starting the others", "starting", strings.Join(down, " "))
	}

	g, gctx := errgroup.WithContext(ctx)
	binaries := newStep()
	ring := newStep()
	postgres := newStep()
	schema := newStep()
	visibility := newStep()
	migrated := newStep()
	temporal := newStep()
	namespace := newStep()
	searchAttributes := newStep()
	run := func(name string, s *step, deps []*step, fn func(context.Context) error) {
		g.Go(func() error {
			err := waitSteps(gctx, deps...)
			if err == nil {
				t := time.Now()
				if err = fn(gctx); err == nil {
					c.log.Info("phase done", "phase", name, "seconds", secs(time.Since(t)), "since_start", secs(time.Since(began)))
				}
			}
			s.finish(err)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	run("build Temporal binaries", binaries, nil, c.buildBinaries)
	run("Cassandra ring", ring, nil, c.startRing)
	run("PostgreSQL", postgres, nil, c.startPostgres)
	run("Temporal schema (Cassandra)", schema, []*step{binaries, ring}, c.temporalSchema)
	run("Temporal visibility schema (PostgreSQL)", visibility, []*step{binaries, postgres}, c.visibilitySchema)
	run("read-model schema (artifactstate migrate)", migrated, []*step{ring}, c.migrateReadModel)
	run("Temporal services", temporal, []*step{schema, visibility}, c.startTemporal)
	run("namespace", namespace, []*step{temporal}, c.registerNamespace)
	run("search attributes (artifactstate migrate)", searchAttributes, []*step{namespace}, c.migrateSearchAttributes)
	run("artifactstate workers, APIs and Web UI", newStep(), []*step{searchAttributes, migrated}, c.startApps)
	if err := g.Wait(); err != nil {
		return err
	}
	t := time.Now()
	if err := c.smokeTest(ctx); err != nil {
		return fmt.Errorf("smoke test: %w", err)
	}
	c.log.Info("phase done", "phase", "smoke test (a write and reads through every API node)", "seconds", secs(time.Since(t)))
	c.log.Info("cluster is up", "seconds", secs(time.Since(began)), "dir", c.dir)
	return nil
}

// step is a phase of Up that others wait for.
type step struct {
	done chan struct{}
	err  error
}

func newStep() *step { return &step{done: make(chan struct{})} }

func (s *step) finish(err error) { s.err = err; close(s.done) }

func waitSteps(ctx context.Context, steps ...*step) error {
	for _, s := range steps {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			if s.err != nil {
				return errors.New("an earlier phase failed")
			}
		}
	}
	return nil
}

func secs(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}

// Components of the cluster, in start order.
const (
	cassandraNodes = 3
	postgresName   = "postgres"
	frontendName   = "temporal-frontend"
	internalWorker = "temporal-worker"
	uiName         = "temporal-ui"
	historyHosts   = 2
	// matchingHosts: two, so that a matching crash moves its task queue
	// partitions to the other host instead of stopping them (production
	// runs three).
	matchingHosts = 2
)

// CassandraName is the name of Cassandra node i (1-based).
func CassandraName(i int) string { return "cassandra-" + strconv.Itoa(i) }

// HistoryName is the name of history host i (1-based).
func HistoryName(i int) string { return "temporal-history-" + strconv.Itoa(i) }

// MatchingName is the name of matching host i (1-based).
func MatchingName(i int) string { return "temporal-matching-" + strconv.Itoa(i) }

// WorkerName and APIName name the artifactstate processes (1-based).
func WorkerName(i int) string { return "worker-" + strconv.Itoa(i) }
func APIName(i int) string    { return "api-" + strconv.Itoa(i) }

// FrontendName names the Temporal frontend for callers (the fault test).
const FrontendName = frontendName

func (c *Cluster) temporalNames() []string {
	names := []string{frontendName}
	for i := 1; i <= historyHosts; i++ {
		names = append(names, HistoryName(i))
	}
	for i := 1; i <= matchingHosts; i++ {
		names = append(names, MatchingName(i))
	}
	return append(names, internalWorker)
}

// components lists every process of the cluster as configured.
func (c *Cluster) components() []string {
	var names []string
	for i := 1; i <= cassandraNodes; i++ {
		names = append(names, CassandraName(i))
	}
	names = append(names, postgresName)
	names = append(names, c.temporalNames()...)
	for i := 1; i <= c.opts.Workers; i++ {
		names = append(names, WorkerName(i))
	}
	for i := 1; i <= c.opts.APIs; i++ {
		names = append(names, APIName(i))
	}
	if !c.opts.NoWebUI {
		names = append(names, uiName)
	}
	return names
}

func temporalRole(name string) string {
	switch {
	case name == frontendName:
		return roleFrontend
	case strings.HasPrefix(name, "temporal-matching-"):
		return roleMatching
	case name == internalWorker:
		return roleWorker
	case strings.HasPrefix(name, "temporal-history-"):
		return roleHistory
	}
	return ""
}

// allocatePorts picks, once, every port the configured cluster needs.
func (c *Cluster) allocatePorts() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.st.Ports
	var err error
	pick := func(dst *int, hosts ...string) {
		if err == nil && *dst == 0 {
			*dst, err = c.st.freePort(hosts...)
		}
	}
	hosts := []string{nodeHost(1), nodeHost(2), nodeHost(3)}
	pick(&p.CassandraNative, hosts...)
	pick(&p.CassandraStorage, hosts...)
	pick(&p.Postgres, "127.0.0.1")
	pick(&p.UI, "127.0.0.1")
	for _, name := range c.temporalNames() {
		tp := p.Temporal[name]
		pick(&tp.GRPC, "127.0.0.1")
		pick(&tp.Membership, "127.0.0.1")
		pick(&tp.Metrics, "127.0.0.1")
		if name == frontendName {
			pick(&tp.HTTP, "127.0.0.1")
		}
		p.Temporal[name] = tp
	}
	for _, name := range c.components() {
		if isApp(name) && err == nil {
			err = c.pickAppPortsLocked(name)
		}
	}
	if err != nil {
		return err
	}
	return c.saveLocked()
}

// pickAppPortsLocked gives an artifactstate process the ports it lacks: its
// HTTP port and, for an api node, its admin listener and gRPC API (every
// listener of compose's service needs its own port on one machine).
func (c *Cluster) pickAppPortsLocked(name string) error {
	p := &c.st.Ports
	maps := []map[string]int{p.App}
	if strings.HasPrefix(name, "api-") {
		maps = append(maps, p.AppAdmin, p.AppGRPC)
	}
	for _, m := range maps {
		if m[name] != 0 {
			continue
		}
		port, err := c.st.freePort("127.0.0.1")
		if err != nil {
			return err
		}
		m[name] = port
	}
	return nil
}

func (c *Cluster) saveLocked() error { return writeState(filepath.Join(c.dir, "cluster.json"), c.st) }

func isApp(name string) bool {
	return strings.HasPrefix(name, "worker-") || strings.HasPrefix(name, "api-")
}

// record notes a started process.
func (c *Cluster) record(name string, ps procState, exited <-chan struct{}) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Procs[name] = ps
	if exited != nil {
		c.exited[name] = exited
	}
	return c.saveLocked()
}

func (c *Cluster) forget(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.st.Procs, name)
	delete(c.exited, name)
	return c.saveLocked()
}

func (c *Cluster) proc(name string) (procState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.st.Procs[name]
	return ps, ok
}

// running reports whether the recorded process of name is alive.
func (c *Cluster) running(name string) (procState, bool) {
	ps, ok := c.proc(name)
	return ps, ok && isProcess(ps.PID, ps.Argv)
}

func (c *Cluster) notRunning() []string {
	var down []string
	for _, name := range c.components() {
		if _, ok := c.running(name); !ok {
			down = append(down, name)
		}
	}
	return down
}

// launchRecorded starts spec unless it already runs, and records it.
func (c *Cluster) launchRecorded(spec procSpec, address string) (started bool, err error) {
	if ps, ok := c.running(spec.Name); ok && slices.Equal(ps.Argv, spec.argv()) {
		c.log.Info("already running", "process", spec.Name, "pid", ps.PID)
		return false, nil
	} else if ok {
		return false, fmt.Errorf("localcluster: %s runs (pid %d) with another command line; run `down` first", spec.Name, ps.PID)
	}
	pid, exited, err := launch(spec)
	if err != nil {
		return false, err
	}
	c.log.Info("started", "process", spec.Name, "pid", pid, "address", address)
	return true, c.record(spec.Name, procState{PID: pid, Argv: spec.argv(), Address: address, Log: spec.Log,
		StartedAt: time.Now().UTC()}, exited)
}

// waitReady polls check until it succeeds, the process exits or timeout.
func (c *Cluster) waitReady(ctx context.Context, name string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.mu.Lock()
	exited := c.exited[name]
	c.mu.Unlock()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if ps, ok := c.proc(name); ok && ps.PID > 0 && !isProcess(ps.PID, ps.Argv) {
			return fmt.Errorf("%s (pid %d) exited; last lines of %s:\n%s", name, ps.PID, ps.Log, logTail(ps.Log, 30))
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			ps, _ := c.proc(name)
			return fmt.Errorf("%s not ready within %v: %v; last lines of %s:\n%s", name, timeout, last, ps.Log, logTail(ps.Log, 30))
		case <-exited: // nil when another process started it: never fires
		case <-tick.C:
		}
	}
}

func (c *Cluster) logFile(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

// buildBinaries builds the Temporal server, its two schema tools (all at
// the version dev/go.mod pins, as `tool` dependencies) and the Web UI command.
// Go's build cache makes a rebuild of unchanged sources quick.
func (c *Cluster) buildBinaries(ctx context.Context) error {
	if err := os.MkdirAll(c.bin, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", c.bin+string(filepath.Separator),
		"go.temporal.io/server/cmd/server", "go.temporal.io/server/cmd/tools/cassandra",
		"go.temporal.io/server/cmd/tools/sql", "./internal/localcluster/cmd/clusterui")
	cmd.Dir = filepath.Join(c.repo, "dev") // the module that requires the server
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	v, err := exec.CommandContext(ctx, c.binary("server"), "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("temporal server --version: %w: %s", err, v)
	}
	if got := strings.TrimSpace(string(v)); !strings.HasSuffix(got, " "+c.dep.TemporalVersion) {
		return fmt.Errorf("the Temporal server built from dev/go.mod says %q; %s runs temporalio/server:%s: keep them equal",
			got, composeFile, c.dep.TemporalVersion)
	}
	if _, err := os.Stat(c.opts.Artifactstate); err != nil {
		return fmt.Errorf("the artifactstate binary: %w (run `make build`)", err)
	}
	return nil
}

func (c *Cluster) binary(name string) string { return filepath.Join(c.bin, name) }

// runTool runs one schema tool command, its output appended to logName.
func (c *Cluster) runTool(ctx context.Context, logName, tool string, args []string) error {
	if err := runLogged(exec.CommandContext(ctx, c.binary(tool), args...), c.logFile(logName)); err != nil {
		return fmt.Errorf("%s %s: %w", tool, strings.Join(args, " "), err)
	}
	return nil
}

// schemaDir is the versioned schemas shipped in the pinned server module.
func (c *Cluster) schemaDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/server")
	cmd.Dir = filepath.Join(c.repo, "dev")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m go.temporal.io/server: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "schema"), nil
}

func (c *Cluster) temporalSchema(ctx context.Context) error {
	dir, err := c.schemaDir(ctx)
	if err != nil {
		return err
	}
	steps, err := c.dep.schemaArgs(c.seedList(), c.st.Ports.CassandraNative, dir)
	if err != nil {
		return err
	}
	for _, args := range steps {
		if err := c.runTool(ctx, "schema", "cassandra", args); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) visibilitySchema(ctx context.Context) error {
	dir, err := c.schemaDir(ctx)
	if err != nil {
		return err
	}
	for _, args := range visibilitySchemaArgs(c.st.Ports.Postgres, dir) {
		if err := c.runTool(ctx, "schema", "sql", args); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) startPostgres(ctx context.Context) error {
	binDir, err := postgresBinDir()
	if err != nil {
		return err
	}
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	data := filepath.Join(c.dir, "postgres", "data")
	sock := filepath.Join(c.dir, "postgres", "run")
	if err := os.MkdirAll(filepath.Join(c.dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := initPostgres(ctx, binDir, data, c.logFile(postgresName), cred); err != nil {
		return err
	}
	if err := os.MkdirAll(sock, 0o755); err != nil {
		return err
	}
	if err := chownTree(sock, cred); err != nil {
		return err
	}
	port := c.st.Ports.Postgres
	spec := procSpec{Name: postgresName, Path: filepath.Join(binDir, "postgres"), Args: postgresArgs(data, sock, port),
		Log: c.logFile(postgresName), Cred: cred}
	if _, err := c.launchRecorded(spec, hostPort(port)); err != nil {
		return err
	}
	return c.waitReady(ctx, postgresName, time.Minute, func(ctx context.Context) error {
		return postgresReady(ctx, binDir, port)
	})
}

// temporalSpec is the command line of one Temporal process; its config
// file is written by writeTemporalConfig.
func (c *Cluster) temporalSpec(name string) procSpec {
	return procSpec{Name: name, Path: c.binary("server"),
		Args: []string{"--config-file", c.temporalConfigPath(name), "--allow-no-auth", "start", "--service", temporalRole(name)},
		Log:  c.logFile(name)}
}

func (c *Cluster) temporalConfigPath(name string) string {
	return filepath.Join(c.dir, "temporal", name+".yaml")
}

func (c *Cluster) writeTemporalConfig(name string) error {
	p := c.st.Ports
	services := map[string]temporalPorts{
		roleFrontend: p.Temporal[frontendName], roleHistory: p.Temporal[HistoryName(1)],
		roleMatching: p.Temporal[MatchingName(1)], roleWorker: p.Temporal[internalWorker],
	}
	services[temporalRole(name)] = p.Temporal[name]
	y, err := renderTemporalConfig(temporalConfigParams{
		Role: temporalRole(name), Ports: p.Temporal[name], Services: services, Frontend: p.Temporal[frontendName],
		NumHistoryShards: c.dep.NumHistoryShards, CassandraHosts: c.seedList(), CassandraPort: p.CassandraNative,
		Keyspace: c.dep.Keyspace, Consistency: c.dep.Consistency, SerialConsistency: c.dep.SerialConsistency,
		PostgresPort: p.Postgres, DynamicConfigFile: c.dep.DynamicConfigFile,
		ArchivalDir: filepath.Join(c.dir, "temporal", "archival"),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.temporalConfigPath(name)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.temporalConfigPath(name), []byte(y), 0o644)
}

// startTemporalProcess starts one Temporal service and waits for its
// gRPC health check to answer SERVING.
func (c *Cluster) startTemporalProcess(ctx context.Context, name string) error {
	if _, ok := c.running(name); !ok {
		if err := c.writeTemporalConfig(name); err != nil {
			return err
		}
	}
	return c.startSupervised(ctx, c.temporalSpec(name), hostPort(c.st.Ports.Temporal[name].GRPC), 3*time.Minute)
}

// startAttempts bounds how often startSupervised launches a process that
// exits before it is ready.
const startAttempts = 3

// startSupervised launches spec and waits for its health check, like a
// restart policy: a process that exits while starting is launched again,
// up to startAttempts times. (Five Temporal services starting together
// each save the cluster metadata with a lightweight transaction; on two
// busy cores one of them can time out and exit, as a pod would, to be
// restarted.)
func (c *Cluster) startSupervised(ctx context.Context, spec procSpec, address string, timeout time.Duration) error {
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if _, err = c.launchRecorded(spec, address); err != nil {
			return err
		}
		err = c.waitReady(ctx, spec.Name, timeout, func(ctx context.Context) error { return c.health(ctx, spec.Name) })
		if err == nil || ctx.Err() != nil {
			return err
		}
		if _, running := c.running(spec.Name); running {
			return err // alive but not ready: starting again would not help
		}
		c.log.Warn("exited while starting; starting it again", "process", spec.Name, "attempt", attempt, "err", firstLine(err))
	}
	return err
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func (c *Cluster) startTemporal(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range c.temporalNames() {
		g.Go(func() error { return c.startTemporalProcess(gctx, name) })
	}
	return g.Wait()
}

// FrontendAddress is the Temporal frontend's host:port.
func (c *Cluster) FrontendAddress() string { return hostPort(c.st.Ports.Temporal[frontendName].GRPC) }

// APIURLs are the base URLs of the api nodes, in order.
func (c *Cluster) APIURLs() []string {
	var urls []string
	for i := 1; i <= c.opts.APIs; i++ {
		urls = append(urls, "http://"+hostPort(c.st.Ports.App[APIName(i)]))
	}
	return urls
}

// APINode is the index in APIURLs of the api node called name, or -1 when
// name is no api node.
func (c *Cluster) APINode(name string) int {
	for i := range c.APIURLs() {
		if APIName(i+1) == name {
			return i
		}
	}
	return -1
}

// UIURL is the Temporal Web UI's URL ("" without UI).
func (c *Cluster) UIURL() string {
	if c.opts.NoWebUI {
		return ""
	}
	return "http://" + hostPort(c.st.Ports.UI)
}

// appEnv is the environment of an artifactstate process: compose's for its
// role, then Options.AppEnv.
func (c *Cluster) appEnv(role string, extra ...string) []string {
	env := map[string]string{}
	src := c.dep.WorkerEnv
	if role == "api" {
		src = c.dep.APIEnv
	}
	for k, v := range src {
		env[k] = v
	}
	for k, v := range c.opts.AppEnv {
		env[k] = v
	}
	out := make([]string, 0, len(env)+len(extra))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return append(out, extra...)
}

// appSpec is the command line of an artifactstate process; the addresses
// are flags, which beat compose's environment; env is added last.
func (c *Cluster) appSpec(name string, env ...string) (procSpec, string) {
	role, _, _ := strings.Cut(name, "-")
	port := c.st.Ports.App[name]
	args := []string{role, "--temporal-address", c.FrontendAddress(), "--cassandra-hosts", c.CassandraHosts()}
	var extra []string
	if role == "api" {
		args = append(args, "--listen", hostPort(port))
		extra = append(extra,
			"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS="+hostPort(c.st.Ports.AppAdmin[name]),
			"ARTIFACTSTATE_GRPC_LISTEN_ADDRESS="+hostPort(c.st.Ports.AppGRPC[name]))
	} else {
		args = append(args, "--identity", name+"@localcluster")
		extra = append(extra, "ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS="+hostPort(port))
	}
	extra = append(extra, env...)
	return procSpec{Name: name, Path: c.opts.Artifactstate, Args: args, Env: c.appEnv(role, extra...), Log: c.logFile(name)},
		"http://" + hostPort(port)
}

// startApp starts one artifactstate process and waits for /readyz.
func (c *Cluster) startApp(ctx context.Context, name string, env ...string) error {
	spec, url := c.appSpec(name, env...)
	return c.startSupervised(ctx, spec, url, 2*time.Minute)
}

func (c *Cluster) uiSpec() procSpec {
	return procSpec{Name: uiName, Path: c.binary("clusterui"),
		Args: []string{"--listen", hostPort(c.st.Ports.UI), "--frontend", c.FrontendAddress(), "--namespace", c.dep.Namespace},
		Log:  c.logFile(uiName)}
}

func (c *Cluster) startUI(ctx context.Context) error {
	if _, err := c.launchRecorded(c.uiSpec(), c.UIURL()); err != nil {
		return err
	}
	return c.waitReady(ctx, uiName, time.Minute, func(ctx context.Context) error { return c.health(ctx, uiName) })
}

func (c *Cluster) startApps(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range c.components() {
		switch {
		case isApp(name):
			g.Go(func() error { return c.startApp(gctx, name) })
		case name == uiName:
			g.Go(func() error { return c.startUI(gctx) })
		}
	}
	return g.Wait()
}

// migrateReadModel runs `artifactstate migrate` for the read model only:
// its keyspace with the ring's replication factor. It needs only the ring,
// so it runs while Temporal's schema is applied.
func (c *Cluster) migrateReadModel(ctx context.Context) error {
	return c.runMigrate(ctx, []string{"--cassandra-hosts", c.CassandraHosts()},
		"ARTIFACTSTATE_TEMPORAL_SEARCH_ATTRIBUTES=false",
		"ARTIFACTSTATE_CASSANDRA_REPLICATION_CLASS=SimpleStrategy",
		"ARTIFACTSTATE_CASSANDRA_REPLICATION_FACTOR="+strconv.Itoa(c.dep.ReplicationFactor),
		"ARTIFACTSTATE_CASSANDRA_TIMEOUT=30s") // schema changes wait for the whole ring
}

// migrateSearchAttributes runs `artifactstate migrate` for the rest: the
// entities' search attributes in the namespace (compose runs migrate after
// the namespace exists for this part).
func (c *Cluster) migrateSearchAttributes(ctx context.Context) error {
	return c.runMigrate(ctx, []string{"--temporal-address", c.FrontendAddress(), "--cassandra-hosts", ""})
}

func (c *Cluster) runMigrate(ctx context.Context, args []string, env ...string) error {
	if _, err := os.Stat(c.opts.Artifactstate); err != nil {
		return fmt.Errorf("the artifactstate binary: %w (run `make build`)", err)
	}
	cmd := exec.CommandContext(ctx, c.opts.Artifactstate, append([]string{"migrate"}, args...)...)
	cmd.Env = append(os.Environ(), c.appEnv("worker", env...)...)
	if err := runLogged(cmd, c.logFile("migrate")); err != nil {
		return fmt.Errorf("artifactstate migrate: %w", err)
	}
	return nil
}

// health checks one component the way its readiness is defined.
func (c *Cluster) health(ctx context.Context, name string) error {
	p := c.st.Ports
	switch {
	case strings.HasPrefix(name, "cassandra-"):
		i, _ := strconv.Atoi(strings.TrimPrefix(name, "cassandra-"))
		return cqlPing(ctx, nodeHost(i), p.CassandraNative)
	case name == postgresName:
		binDir, err := postgresBinDir()
		if err != nil {
			return err
		}
		return postgresReady(ctx, binDir, p.Postgres)
	case temporalRole(name) != "":
		return grpcHealthy(ctx, hostPort(p.Temporal[name].GRPC), healthService[temporalRole(name)])
	case isApp(name):
		return httpOK(ctx, "http://"+hostPort(p.App[name])+"/readyz")
	case name == uiName:
		return httpOK(ctx, c.UIURL()+"/")
	}
	return fmt.Errorf("unknown component %q", name)
}

var probeClient = &http.Client{Timeout: 3 * time.Second}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func (c *Cluster) waitAllHealthy(ctx context.Context, timeout time.Duration) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range c.components() {
		g.Go(func() error {
			return c.waitReady(gctx, name, timeout, func(ctx context.Context) error { return c.health(ctx, name) })
		})
	}
	return g.Wait()
}

// Start starts one component that is not running (after Kill, or Stop) and
// waits until it is ready; for a Cassandra node, until the whole ring
// sees it.
func (c *Cluster) Start(ctx context.Context, name string) error {
	switch {
	case strings.HasPrefix(name, "cassandra-"):
		i, err := strconv.Atoi(strings.TrimPrefix(name, "cassandra-"))
		if err != nil || i < 1 || i > cassandraNodes {
			return fmt.Errorf("localcluster: no Cassandra node %q", name)
		}
		if err := c.startNode(ctx, i); err != nil {
			return err
		}
		return c.waitRing(ctx, 3*time.Minute)
	case name == postgresName:
		return c.startPostgres(ctx)
	case temporalRole(name) != "":
		return c.startTemporalProcess(ctx, name)
	case isApp(name):
		return c.StartApp(ctx, name)
	case name == uiName:
		return c.startUI(ctx)
	}
	return fmt.Errorf("localcluster: no component %q", name)
}

// StartApp starts an artifactstate process (worker-N or api-N, a new one
// too) with env added to its environment (e.g. another build ID for a
// versioned rollout) and waits until it is ready.
func (c *Cluster) StartApp(ctx context.Context, name string, env ...string) error {
	if !isApp(name) {
		return fmt.Errorf("localcluster: %q is no artifactstate process", name)
	}
	c.mu.Lock()
	_, known := c.st.Ports.App[name]
	c.mu.Unlock()
	if !known {
		if err := c.addApp(name); err != nil {
			return err
		}
	}
	return c.startApp(ctx, name, env...)
}

// addApp gives an artifactstate process beyond the configured ones (say a
// third worker for a benchmark) its port.
func (c *Cluster) addApp(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.pickAppPortsLocked(name); err != nil {
		return err
	}
	return c.saveLocked()
}

// Kill SIGKILLs a component, as a crash would, and waits until it is gone.
func (c *Cluster) Kill(name string) error {
	ps, ok := c.running(name)
	if !ok {
		return fmt.Errorf("localcluster: %s is not running", name)
	}
	c.log.Info("SIGKILL", "process", name, "pid", ps.PID)
	return signalAndWait(context.Background(), ps.PID, ps.Argv, syscall.SIGKILL, 10*time.Second)
}

// Freeze SIGSTOPs a component: it keeps its sockets and its place in every
// membership but answers nothing, as a node stuck in a long GC pause or on
// a failing disk would, until Thaw.
func (c *Cluster) Freeze(name string) error {
	ps, ok := c.running(name)
	if !ok {
		return fmt.Errorf("localcluster: %s is not running", name)
	}
	c.log.Info("SIGSTOP", "process", name, "pid", ps.PID)
	return syscall.Kill(ps.PID, syscall.SIGSTOP)
}

// Thaw SIGCONTs a component Freeze stopped.
func (c *Cluster) Thaw(name string) error {
	ps, ok := c.proc(name)
	if !ok {
		return fmt.Errorf("localcluster: %s is not recorded", name)
	}
	c.log.Info("SIGCONT", "process", name, "pid", ps.PID)
	return syscall.Kill(ps.PID, syscall.SIGCONT)
}

// Restart stops a component cleanly (SIGTERM: it drains), starts it again
// and waits until it is ready: one step of a rolling restart.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	if err := c.Stop(ctx, name); err != nil {
		return err
	}
	return c.Start(ctx, name)
}

// Components lists every process of the cluster in start order.
func (c *Cluster) Components() []string { return c.components() }

// Stop stops one component cleanly (SIGTERM, SIGKILL after a grace period).
func (c *Cluster) Stop(ctx context.Context, name string) error {
	ps, ok := c.proc(name)
	if !ok {
		return nil
	}
	grace := 30 * time.Second
	if strings.HasPrefix(name, "cassandra-") {
		grace = 60 * time.Second // a clean shutdown flushes memtables
	}
	if err := signalAndWait(ctx, ps.PID, ps.Argv, syscall.SIGTERM, grace); err != nil {
		return err
	}
	c.log.Info("stopped", "process", name, "pid", ps.PID)
	return c.forget(name)
}

// Down stops every process the cluster started, apps first, the ring last;
// data and ports stay for the next Up.
func (c *Cluster) Down(ctx context.Context) error { return c.stopTiers(ctx, tierRing) }

// StopServices stops the artifactstate processes, the Web UI and Temporal's
// services, and leaves the Cassandra ring and PostgreSQL running; Up
// starts them again.
func (c *Cluster) StopServices(ctx context.Context) error { return c.stopTiers(ctx, tierHistory) }

// Stop order: each tier stops (in parallel) before the next.
const (
	tierApps = iota
	tierTemporal
	tierHistory
	tierPostgres
	tierRing
)

func tierOf(name string) int {
	switch {
	case isApp(name) || name == uiName:
		return tierApps
	case name == frontendName || name == internalWorker || temporalRole(name) == roleMatching:
		return tierTemporal
	case temporalRole(name) != "":
		return tierHistory
	case name == postgresName:
		return tierPostgres
	}
	return tierRing
}

// stopTiers stops the recorded processes of tiers 0 to last, in order.
func (c *Cluster) stopTiers(ctx context.Context, last int) error {
	unlock, err := lockDir(ctx, c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	tiers := make([][]string, last+1)
	c.mu.Lock()
	for name := range c.st.Procs {
		if t := tierOf(name); t <= last {
			tiers[t] = append(tiers[t], name)
		}
	}
	c.mu.Unlock()
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, tier := range tiers {
		var wg sync.WaitGroup
		for _, name := range tier {
			wg.Go(func() {
				if err := c.Stop(ctx, name); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// ProcessStatus is one line of Status.
type ProcessStatus struct {
	Name    string `json:"name"`
	PID     int    `json:"pid,omitempty"`
	Address string `json:"address,omitempty"`
	Running bool   `json:"running"`
	// Health is "ok", or why the component is not healthy.
	Health string `json:"health"`
}

// Status reports every component: pid, address, whether it runs and its
// health check's answer.
func (c *Cluster) Status(ctx context.Context) []ProcessStatus {
	names := c.components()
	c.mu.Lock()
	for name := range c.st.Procs { // extra workers a benchmark added
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	out := make([]ProcessStatus, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			s := ProcessStatus{Name: name, Health: "not running"}
			if ps, ok := c.proc(name); ok {
				s.PID, s.Address = ps.PID, ps.Address
				s.Running = isProcess(ps.PID, ps.Argv)
			}
			if s.Running {
				hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if err := c.health(hctx, name); err != nil {
					s.Health = err.Error()
				} else {
					s.Health = "ok"
				}
			}
			out[i] = s
		})
	}
	wg.Wait()
	return out
}
