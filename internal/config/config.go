// Package config is the one typed configuration of every role of the binary:
// defaults, then an optional YAML file, then ARTIFACTSTATE_* environment
// variables, then command-line flags; validated before anything dials out.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"gopkg.in/yaml.v3"
)

// EnvPrefix starts the name of every environment variable the config reads.
const EnvPrefix = "ARTIFACTSTATE_"

// Config is the whole configuration. The YAML keys and environment variables
// are listed in the README's configuration reference.
type Config struct {
	Log       Log       `yaml:"log" envPrefix:"LOG_"`
	Temporal  Temporal  `yaml:"temporal" envPrefix:"TEMPORAL_"`
	API       API       `yaml:"api" envPrefix:"API_"`
	GRPC      GRPC      `yaml:"grpc" envPrefix:"GRPC_"`
	Worker    Worker    `yaml:"worker" envPrefix:"WORKER_"`
	Cassandra Cassandra `yaml:"cassandra" envPrefix:"CASSANDRA_"`
	Metrics   Metrics   `yaml:"metrics" envPrefix:"METRICS_"`
	Tracing   Tracing   `yaml:"tracing" envPrefix:"TRACING_"`
	Dev       Dev       `yaml:"dev" envPrefix:"DEV_"`
}

// Metrics configures the Prometheus endpoint. The api and dev roles serve
// /metrics on the API port; the worker role serves /metrics, /healthz and
// /readyz on ListenAddress.
type Metrics struct {
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// Pprof serves net/http/pprof under /debug/pprof/ next to /metrics.
	Pprof bool `yaml:"pprof" env:"PPROF"`
}

// Tracing configures OpenTelemetry tracing: off unless an OTLP endpoint is
// set.
type Tracing struct {
	// OTLPEndpoint is the OTLP/gRPC collector, host:port; empty: no tracing.
	OTLPEndpoint string `yaml:"otlpEndpoint" env:"OTLP_ENDPOINT"`
	// Insecure sends spans without TLS.
	Insecure bool `yaml:"insecure" env:"INSECURE"`
	// SampleRatio is the share of new traces recorded, 0 to 1.
	SampleRatio float64 `yaml:"sampleRatio" env:"SAMPLE_RATIO"`
	// ServiceName names this service in traces.
	ServiceName string `yaml:"serviceName" env:"SERVICE_NAME"`
}

// Log configures the process logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level" env:"LEVEL"`
	// Format is json or text; empty picks json for api and worker, text for dev.
	Format string `yaml:"format" env:"FORMAT"`
}

// Temporal says how to reach the Temporal cluster.
type Temporal struct {
	// Address of the frontend, host:port.
	Address   string `yaml:"address" env:"ADDRESS"`
	Namespace string `yaml:"namespace" env:"NAMESPACE"`
	// TaskQueue is the queue every entity workflow and activity runs on.
	TaskQueue string `yaml:"taskQueue" env:"TASK_QUEUE"`
	// APIKey authenticates to Temporal Cloud (sent as a bearer token; needs TLS).
	APIKey string `yaml:"apiKey" env:"API_KEY"`
	TLS    TLS    `yaml:"tls" envPrefix:"TLS_"`
	// Compression of gRPC requests: gzip (the SDK's default, for slow or
	// metered links such as Temporal Cloud) or none (saves CPU next to the
	// cluster; the dev role uses none).
	Compression string `yaml:"compression" env:"COMPRESSION"`
}

// TLS configures the connection to Temporal. Enabled with no files uses the
// system roots; CertFile and KeyFile add a client certificate (mTLS).
type TLS struct {
	Enabled    bool   `yaml:"enabled" env:"ENABLED"`
	CAFile     string `yaml:"caFile" env:"CA_FILE"`
	CertFile   string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile    string `yaml:"keyFile" env:"KEY_FILE"`
	ServerName string `yaml:"serverName" env:"SERVER_NAME"`
}

// API configures the HTTP endpoint.
type API struct {
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// RequestTimeout bounds each request's calls to Temporal (504 past it).
	RequestTimeout time.Duration `yaml:"requestTimeout" env:"REQUEST_TIMEOUT"`
	// MaxBodyBytes is the largest request body accepted (413 past it).
	MaxBodyBytes int64 `yaml:"maxBodyBytes" env:"MAX_BODY_BYTES"`
	// RetryAfter is sent in the Retry-After header of 503 answers.
	RetryAfter time.Duration `yaml:"retryAfter" env:"RETRY_AFTER"`
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout" env:"SHUTDOWN_TIMEOUT"`
}

// GRPC configures the gRPC API of the api and dev roles (internal/grpcapi).
// Its calls share api.requestTimeout, api.retryAfter and api.shutdownTimeout
// with the HTTP API.
type GRPC struct {
	// ListenAddress of the gRPC API; empty: no gRPC API.
	ListenAddress string    `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	TLS           ServerTLS `yaml:"tls" envPrefix:"TLS_"`
}

// ServerTLS makes a server speak TLS with CertFile and KeyFile (PEM, read at
// start-up); ClientCAFile also requires every client to present a
// certificate signed by one of its CAs (mTLS).
type ServerTLS struct {
	Enabled      bool   `yaml:"enabled" env:"ENABLED"`
	CertFile     string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile      string `yaml:"keyFile" env:"KEY_FILE"`
	ClientCAFile string `yaml:"clientCAFile" env:"CLIENT_CA_FILE"`
}

// Worker configures the Temporal worker that runs the entities.
type Worker struct {
	// MaxHistoryEvents is the event budget after which an entity run
	// continues as new (0: only when the server suggests it).
	MaxHistoryEvents int `yaml:"maxHistoryEvents" env:"MAX_HISTORY_EVENTS"`
	// StickyCacheSize is how many entities the worker keeps in memory.
	StickyCacheSize int `yaml:"stickyCacheSize" env:"STICKY_CACHE_SIZE"`
	// PollerBehavior is autoscaling (the SDK grows and shrinks the pollers
	// of each queue between 1 and WorkflowTaskPollers/ActivityTaskPollers,
	// and keeps polling the entity queue while the worker's sticky queue has
	// a backlog) or simple (a fixed number; under load every poll can move
	// to the sticky queue and new entities' first tasks wait for seconds).
	PollerBehavior string `yaml:"pollerBehavior" env:"POLLER_BEHAVIOR"`
	// WorkflowTaskPollers and ActivityTaskPollers are the maximum number of
	// pollers per queue (autoscaling) or the fixed number (simple).
	WorkflowTaskPollers int `yaml:"workflowTaskPollers" env:"WORKFLOW_TASK_POLLERS"`
	ActivityTaskPollers int `yaml:"activityTaskPollers" env:"ACTIVITY_TASK_POLLERS"`
	// StickyScheduleToStartTimeout is how long a task for an entity cached
	// on this worker waits for it before going to any worker: it bounds the
	// extra latency of reads and writes of entities cached on a worker that
	// died.
	StickyScheduleToStartTimeout time.Duration `yaml:"stickyScheduleToStartTimeout" env:"STICKY_SCHEDULE_TO_START_TIMEOUT"`
	// DeadlockDetectionTimeout fails a workflow task whose code does not
	// yield for this long (the SDK's default, 1 s, also fired on a healthy
	// worker whose CPU was starved, failing reads).
	DeadlockDetectionTimeout   time.Duration `yaml:"deadlockDetectionTimeout" env:"DEADLOCK_DETECTION_TIMEOUT"`
	MaxConcurrentWorkflowTasks int           `yaml:"maxConcurrentWorkflowTasks" env:"MAX_CONCURRENT_WORKFLOW_TASKS"`
	MaxConcurrentActivities    int           `yaml:"maxConcurrentActivities" env:"MAX_CONCURRENT_ACTIVITIES"`
	// Identity names this worker in histories; empty means host@pid.
	Identity string `yaml:"identity" env:"IDENTITY"`
	// StopTimeout bounds the wait for running activities on shutdown.
	StopTimeout time.Duration `yaml:"stopTimeout" env:"STOP_TIMEOUT"`
	// ReconcileInterval is how often the worker looks for entities closed by
	// an operator (or failed) and starts them again from their last state,
	// before the namespace's retention deletes that state; 0 turns it off.
	ReconcileInterval time.Duration `yaml:"reconcileInterval" env:"RECONCILE_INTERVAL"`
}

// Cassandra configures the read model the projection writes and the list
// endpoints read. With no hosts there is no read model: the worker does not
// project and the read-model endpoints answer 503.
type Cassandra struct {
	// Hosts are contact points, host or host:port (port defaults to 9042).
	Hosts    []string `yaml:"hosts" env:"HOSTS" envSeparator:","`
	Keyspace string   `yaml:"keyspace" env:"KEYSPACE"`
	// Consistency of reads and writes, e.g. LOCAL_QUORUM, QUORUM, ONE.
	Consistency string `yaml:"consistency" env:"CONSISTENCY"`
	// LocalDC makes the driver prefer this datacenter's nodes.
	LocalDC  string `yaml:"localDC" env:"LOCAL_DC"`
	Username string `yaml:"username" env:"USERNAME"`
	Password string `yaml:"password" env:"PASSWORD"`
	TLS      TLS    `yaml:"tls" envPrefix:"TLS_"`
	// ConnectTimeout bounds dialing; Timeout bounds each query.
	ConnectTimeout time.Duration `yaml:"connectTimeout" env:"CONNECT_TIMEOUT"`
	Timeout        time.Duration `yaml:"timeout" env:"TIMEOUT"`
	// Replication of the keyspace `migrate` creates: SimpleStrategy with
	// ReplicationFactor, or NetworkTopologyStrategy with Datacenters.
	Replication Replication `yaml:"replication" envPrefix:"REPLICATION_"`
	// Projection tunes the activity that writes the read model.
	Projection Projection `yaml:"projection" envPrefix:"PROJECTION_"`
}

// Enabled reports whether a read model is configured.
func (c Cassandra) Enabled() bool { return len(c.Hosts) > 0 }

// Replication of the read-model keyspace.
type Replication struct {
	Class             string `yaml:"class" env:"CLASS"`
	ReplicationFactor int    `yaml:"replicationFactor" env:"FACTOR"`
	// Datacenters maps datacenter to replica count (NetworkTopologyStrategy);
	// in the environment "dc1:3,dc2:3".
	Datacenters map[string]int `yaml:"datacenters" env:"DATACENTERS" envSeparator:"," envKeyValSeparator:":"`
}

// Projection tunes the projection activity's retries: Cassandra being down
// or slow never fails a write; the projection retries with a backoff growing
// from RetryInitialInterval to RetryMaxInterval, so the read model catches up
// within about RetryMaxInterval of Cassandra's return.
type Projection struct {
	// LocalTimeout bounds the first attempt, made inside the workflow task
	// that changed the state (a local activity); 0 skips it. When it fails,
	// a regular activity on the queue <temporal.taskQueue>-projection
	// retries with the settings below.
	LocalTimeout         time.Duration `yaml:"localTimeout" env:"LOCAL_TIMEOUT"`
	Timeout              time.Duration `yaml:"timeout" env:"TIMEOUT"`
	RetryInitialInterval time.Duration `yaml:"retryInitialInterval" env:"RETRY_INITIAL_INTERVAL"`
	RetryMaxInterval     time.Duration `yaml:"retryMaxInterval" env:"RETRY_MAX_INTERVAL"`
	// RejectedPause is how long an entity waits after the read model
	// rejected a projection (schema missing, permissions) before it tries
	// again, if no new change wakes it first.
	RejectedPause time.Duration `yaml:"rejectedPause" env:"REJECTED_PAUSE"`
}

// Dev configures the embedded Temporal server of the dev role.
type Dev struct {
	// DataDir holds the SQLite database, so a restart keeps every entity.
	DataDir string `yaml:"dataDir" env:"DATA_DIR"`
	// InMemory keeps everything in memory instead (lost on exit).
	InMemory bool `yaml:"inMemory" env:"IN_MEMORY"`
	// IP the embedded frontend and Web UI listen on.
	IP           string `yaml:"ip" env:"IP"`
	FrontendPort int    `yaml:"frontendPort" env:"FRONTEND_PORT"`
	// UIPort is the Web UI's port; 0 disables the UI.
	UIPort int `yaml:"uiPort" env:"UI_PORT"`
}

// Default returns the configuration used where nothing else is said.
func Default() Config {
	return Config{
		Log: Log{Level: "info"},
		Temporal: Temporal{
			Address:     "127.0.0.1:7233",
			Namespace:   "default",
			TaskQueue:   "artifactstate-entities",
			Compression: "gzip",
		},
		API: API{
			ListenAddress:   ":8082",
			RequestTimeout:  5 * time.Second,
			MaxBodyBytes:    16 << 10,
			RetryAfter:      time.Second,
			ShutdownTimeout: 15 * time.Second,
		},
		GRPC: GRPC{ListenAddress: ":8083"},
		Worker: Worker{
			MaxHistoryEvents:             2000,
			StickyCacheSize:              10000,
			PollerBehavior:               "autoscaling",
			WorkflowTaskPollers:          100,
			ActivityTaskPollers:          20,
			StickyScheduleToStartTimeout: 2 * time.Second,
			DeadlockDetectionTimeout:     5 * time.Second,
			MaxConcurrentWorkflowTasks:   200,
			MaxConcurrentActivities:      200,
			StopTimeout:                  10 * time.Second,
		},
		Cassandra: Cassandra{
			Keyspace:       "artifactstate",
			Consistency:    "LOCAL_QUORUM",
			ConnectTimeout: 5 * time.Second,
			Timeout:        5 * time.Second,
			Replication:    Replication{Class: "SimpleStrategy", ReplicationFactor: 1},
			Projection: Projection{
				LocalTimeout:         2 * time.Second,
				Timeout:              10 * time.Second,
				RetryInitialInterval: time.Second,
				RetryMaxInterval:     30 * time.Second,
				RejectedPause:        10 * time.Minute,
			},
		},
		Metrics: Metrics{ListenAddress: ":9090"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "artifactstate"},
		Dev: Dev{
			DataDir:      ".artifactstate",
			IP:           "127.0.0.1",
			FrontendPort: 7233,
			UIPort:       8233,
		},
	}
}

// Load returns the defaults overridden by the YAML file at path (if path is
// not empty) and then by the environment. Unknown YAML keys are errors.
func Load(path string, environ map[string]string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := env.ParseWithOptions(&cfg, EnvOptions(environ)); err != nil {
		return cfg, namedEnvError(environ, err)
	}
	return cfg, nil
}

// namedEnvError names the variables that failed to parse: the library's
// error names struct fields, which readers of the environment never see.
func namedEnvError(environ map[string]string, err error) error {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	names, nameErr := EnvVars()
	if nameErr != nil {
		return fmt.Errorf("environment: %w", err)
	}
	var bad []string
	for _, name := range names {
		value, ok := environ[name]
		if !ok {
			continue
		}
		probe := Default()
		if perr := env.ParseWithOptions(&probe, EnvOptions(map[string]string{name: value})); perr != nil {
			bad = append(bad, fmt.Sprintf("%s=%q is not valid for its type", name, value))
		}
	}
	if len(bad) == 0 {
		return fmt.Errorf("environment: %w", err)
	}
	return fmt.Errorf("environment: %s", strings.Join(bad, "; "))
}

// EnvOptions are the options the environment is parsed with; environ nil
// means the process environment.
func EnvOptions(environ map[string]string) env.Options {
	return env.Options{Prefix: EnvPrefix, Environment: environ}
}

// EnvVars lists every environment variable the configuration reads.
func EnvVars() ([]string, error) {
	cfg := Default()
	params, err := env.GetFieldParamsWithOptions(&cfg, EnvOptions(map[string]string{}))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(params))
	for _, p := range params {
		names = append(names, p.Key)
	}
	return names, nil
}

// Validate reports every problem at once, one per line, naming the YAML key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		bad("log.format", "must be json or text, got %q", c.Log.Format)
	}
	if err := checkHostPort(c.Temporal.Address, false); err != nil {
		bad("temporal.address", "%v", err)
	}
	if c.Temporal.Namespace == "" {
		bad("temporal.namespace", "must not be empty")
	}
	if c.Temporal.TaskQueue == "" {
		bad("temporal.taskQueue", "must not be empty")
	}
	if c.Temporal.Compression != "gzip" && c.Temporal.Compression != "none" {
		bad("temporal.compression", "must be gzip or none, got %q", c.Temporal.Compression)
	}
	if c.Temporal.APIKey != "" && !c.Temporal.TLS.Enabled {
		bad("temporal.apiKey", "needs temporal.tls.enabled: true (the key must not travel in clear)")
	}
	errs = append(errs, c.Temporal.TLS.validate("temporal.tls")...)
	if err := checkHostPort(c.API.ListenAddress, true); err != nil {
		bad("api.listenAddress", "%v", err)
	}
	errs = append(errs, c.GRPC.validate(c.API.ListenAddress)...)
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 5s, got %v", d)
		}
	}
	positive("api.requestTimeout", c.API.RequestTimeout)
	positive("api.retryAfter", c.API.RetryAfter)
	positive("api.shutdownTimeout", c.API.ShutdownTimeout)
	positive("worker.stopTimeout", c.Worker.StopTimeout)
	if c.Worker.ReconcileInterval < 0 {
		bad("worker.reconcileInterval", "must be 0 (off) or a positive duration, got %v", c.Worker.ReconcileInterval)
	}
	if c.API.MaxBodyBytes < 256 {
		bad("api.maxBodyBytes", "must be at least 256, got %d", c.API.MaxBodyBytes)
	}
	if c.Worker.MaxHistoryEvents != 0 && (c.Worker.MaxHistoryEvents < 100 || c.Worker.MaxHistoryEvents > 40000) {
		bad("worker.maxHistoryEvents", "must be 0 (server decides) or between 100 and 40000, got %d", c.Worker.MaxHistoryEvents)
	}
	atLeast := func(key string, v, min int) {
		if v < min {
			bad(key, "must be at least %d, got %d", min, v)
		}
	}
	atLeast("worker.stickyCacheSize", c.Worker.StickyCacheSize, 0)
	switch c.Worker.PollerBehavior {
	case "autoscaling", "simple":
	default:
		bad("worker.pollerBehavior", "must be autoscaling or simple, got %q", c.Worker.PollerBehavior)
	}
	positive("worker.stickyScheduleToStartTimeout", c.Worker.StickyScheduleToStartTimeout)
	positive("worker.deadlockDetectionTimeout", c.Worker.DeadlockDetectionTimeout)
	atLeast("worker.workflowTaskPollers", c.Worker.WorkflowTaskPollers, 2)
	atLeast("worker.activityTaskPollers", c.Worker.ActivityTaskPollers, 1)
	atLeast("worker.maxConcurrentWorkflowTasks", c.Worker.MaxConcurrentWorkflowTasks, 2)
	atLeast("worker.maxConcurrentActivities", c.Worker.MaxConcurrentActivities, 1)
	errs = append(errs, c.Cassandra.validate()...)
	if err := checkHostPort(c.Metrics.ListenAddress, true); err != nil {
		bad("metrics.listenAddress", "%v", err)
	}
	if c.Tracing.OTLPEndpoint != "" {
		if err := checkHostPort(c.Tracing.OTLPEndpoint, false); err != nil {
			bad("tracing.otlpEndpoint", "%v", err)
		}
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		bad("tracing.sampleRatio", "must be between 0 and 1, got %v", c.Tracing.SampleRatio)
	}
	if c.Tracing.ServiceName == "" {
		bad("tracing.serviceName", "must not be empty")
	}
	if !c.Dev.InMemory && c.Dev.DataDir == "" {
		bad("dev.dataDir", "must not be empty unless dev.inMemory is true")
	}
	if net.ParseIP(c.Dev.IP) == nil {
		bad("dev.ip", "must be an IP address, got %q", c.Dev.IP)
	}
	if c.Dev.FrontendPort < 1 || c.Dev.FrontendPort > 65535 {
		bad("dev.frontendPort", "must be a port number, got %d", c.Dev.FrontendPort)
	}
	if c.Dev.UIPort < 0 || c.Dev.UIPort > 65535 || c.Dev.UIPort == c.Dev.FrontendPort {
		bad("dev.uiPort", "must be 0 (no UI) or a port number other than dev.frontendPort, got %d", c.Dev.UIPort)
	}
	if len(errs) == 0 {
		return nil
	}
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = "  - " + err.Error()
	}
	return fmt.Errorf("invalid configuration:\n%s", strings.Join(lines, "\n"))
}

func (g GRPC) validate(apiListenAddress string) []error {
	var errs []error
	if g.ListenAddress != "" {
		if err := checkHostPort(g.ListenAddress, true); err != nil {
			errs = append(errs, fmt.Errorf("grpc.listenAddress: %v (or empty: no gRPC API)", err))
		} else if g.ListenAddress == apiListenAddress {
			errs = append(errs, fmt.Errorf("grpc.listenAddress: %q is api.listenAddress too; the gRPC API needs a port of its own", g.ListenAddress))
		}
	}
	t := g.TLS
	if t.Enabled && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("grpc.tls: enabled needs certFile and keyFile"))
	}
	for _, f := range []struct{ key, path string }{
		{"grpc.tls.certFile", t.CertFile}, {"grpc.tls.keyFile", t.KeyFile}, {"grpc.tls.clientCAFile", t.ClientCAFile},
	} {
		if f.path == "" {
			continue
		}
		if !t.Enabled {
			errs = append(errs, fmt.Errorf("%s: is set but grpc.tls.enabled is false", f.key))
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.key, err))
		}
	}
	return errs
}

var keyspaceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// consistencies are those valid for both reads and writes (ANY is for
// writes only: every read would fail; EACH_QUORUM is not supported for
// reads either).
var consistencies = []string{"ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "LOCAL_ONE"}

func (c Cassandra) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cassandra.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for _, h := range c.Hosts {
		if h == "" || strings.ContainsAny(h, " /") {
			bad("hosts", "%q is not a host or host:port", h)
		} else if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			if err := checkHostPort(h, false); err != nil {
				bad("hosts", "%v", err)
			}
		}
	}
	if !keyspaceName.MatchString(c.Keyspace) {
		bad("keyspace", "must be lower-case letters, digits and _ (starting with a letter, at most 48), got %q", c.Keyspace)
	}
	if !slices.Contains(consistencies, c.Consistency) {
		bad("consistency", "must be one of %s (it serves reads and writes), got %q", strings.Join(consistencies, ", "), c.Consistency)
	}
	if (c.Username == "") != (c.Password == "") {
		bad("username", "username and password go together")
	}
	errs = append(errs, c.TLS.validate("cassandra.tls")...)
	for name, d := range map[string]time.Duration{
		"connectTimeout": c.ConnectTimeout, "timeout": c.Timeout, "projection.timeout": c.Projection.Timeout,
		"projection.retryInitialInterval": c.Projection.RetryInitialInterval, "projection.retryMaxInterval": c.Projection.RetryMaxInterval,
		"projection.rejectedPause": c.Projection.RejectedPause,
	} {
		if d <= 0 {
			bad(name, "must be a positive duration, got %v", d)
		}
	}
	if c.Projection.LocalTimeout < 0 || c.Projection.LocalTimeout > 5*time.Second {
		bad("projection.localTimeout", "must be between 0 (no local attempt) and 5s (it holds the workflow task open), got %v", c.Projection.LocalTimeout)
	}
	if c.Projection.RetryMaxInterval < c.Projection.RetryInitialInterval {
		bad("projection.retryMaxInterval", "must not be below projection.retryInitialInterval")
	}
	switch c.Replication.Class {
	case "SimpleStrategy":
		if c.Replication.ReplicationFactor < 1 {
			bad("replication.replicationFactor", "must be at least 1, got %d", c.Replication.ReplicationFactor)
		}
	case "NetworkTopologyStrategy":
		if len(c.Replication.Datacenters) == 0 {
			bad("replication.datacenters", "NetworkTopologyStrategy needs at least one datacenter")
		}
		for dc, n := range c.Replication.Datacenters {
			if !datacenterName.MatchString(dc) || n < 1 {
				bad("replication.datacenters", "%q: %d is not a datacenter name with a replica count of at least 1", dc, n)
			}
		}
	default:
		bad("replication.class", "must be SimpleStrategy or NetworkTopologyStrategy, got %q", c.Replication.Class)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// validate checks TLS settings under the key prefix: cert and key together,
// files that exist, and no file without enabled.
func (t TLS) validate(prefix string) []error {
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: certFile and keyFile go together", prefix))
	}
	for _, f := range []struct{ key, path string }{
		{prefix + ".caFile", t.CAFile},
		{prefix + ".certFile", t.CertFile},
		{prefix + ".keyFile", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if !t.Enabled {
			errs = append(errs, fmt.Errorf("%s: is set but %s.enabled is false", f.key, prefix))
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.key, err))
		}
	}
	return errs
}

var datacenterName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func checkHostPort(addr string, hostOptional bool) error {
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

// Redacted returns a copy safe to log: secrets are masked.
func (c Config) Redacted() Config {
	if c.Temporal.APIKey != "" {
		c.Temporal.APIKey = "****"
	}
	if c.Cassandra.Password != "" {
		c.Cassandra.Password = "****"
	}
	return c
}
