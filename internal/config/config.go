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
	"net/url"
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
	Admin     Admin     `yaml:"admin" envPrefix:"ADMIN_"`
	Tracing   Tracing   `yaml:"tracing" envPrefix:"TRACING_"`
	Auth      Auth      `yaml:"auth" envPrefix:"AUTH_"`
	Privacy   Privacy   `yaml:"privacy" envPrefix:"PRIVACY_"`
	Dev       Dev       `yaml:"dev" envPrefix:"DEV_"`
}

// Admin configures the admin listener every role opens beside its work:
// /metrics, /healthz, /readyz, /debug/pprof/ (if Pprof) and the payload codec
// (/codec/, if temporal.encryption.keysFile is set). The API port serves
// none of these but health.
type Admin struct {
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool `yaml:"pprof" env:"PPROF"`
	// TLS serves the admin listener over TLS.
	TLS ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	// CodecCORSOrigins may call the codec from a browser: the Temporal Web
	// UI's origin, e.g. https://temporal-ui.example.com.
	CodecCORSOrigins []string `yaml:"codecCORSOrigins" env:"CODEC_CORS_ORIGINS" envSeparator:","`
}

// ServerTLS makes an HTTP listener serve TLS. The files are re-read when
// they change, so a rotated certificate is served without a restart.
type ServerTLS struct {
	CertFile string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile  string `yaml:"keyFile" env:"KEY_FILE"`
}

// Enabled reports whether TLS is configured.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// Auth configures who may call the API. Off by default (and in dev); when
// on, every API request needs a bearer JWT or an API key, and a caller may
// use only its own user's pairs unless it holds a service scope.
type Auth struct {
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// JWKSURL is the identity provider's key set (https), refreshed hourly
	// and when a token names an unknown key.
	JWKSURL string `yaml:"jwksURL" env:"JWKS_URL"`
	// JWKSFile is a static key set (JWKS JSON) instead of, or beside, JWKSURL.
	JWKSFile string `yaml:"jwksFile" env:"JWKS_FILE"`
	// Issuer and Audience every JWT must carry (iss, aud).
	Issuer   string `yaml:"issuer" env:"ISSUER"`
	Audience string `yaml:"audience" env:"AUDIENCE"`
	// SubjectClaim holds the caller's user ID (default sub).
	SubjectClaim string `yaml:"subjectClaim" env:"SUBJECT_CLAIM"`
	// ScopeClaim holds the scopes: a space-separated string or an array
	// (default scope).
	ScopeClaim string `yaml:"scopeClaim" env:"SCOPE_CLAIM"`
	// ClockSkew is the leeway on exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clockSkew" env:"CLOCK_SKEW"`
	// APIKeysFile lists API keys by their SHA-256 (YAML; see the README).
	APIKeysFile string `yaml:"apiKeysFile" env:"API_KEYS_FILE"`
	// ServiceScopes may use every user's pairs (the original /artifactState
	// contract's callers are services).
	ServiceScopes []string `yaml:"serviceScopes" env:"SERVICE_SCOPES" envSeparator:","`
	// AdminScopes may use the admin endpoints (the payload codec).
	AdminScopes []string `yaml:"adminScopes" env:"ADMIN_SCOPES" envSeparator:","`
}

// Privacy keeps user IDs (personal data) out of logs and traces.
type Privacy struct {
	// UserIDs in logs and traces: raw, hash (a keyed hash: lines about one
	// user still correlate) or drop.
	UserIDs string `yaml:"userIds" env:"USER_IDS"`
	// HashKeyFile holds the hash key (at least 32 bytes) for UserIDs: hash.
	HashKeyFile string `yaml:"hashKeyFile" env:"HASH_KEY_FILE"`
}

// RateLimit bounds request rates with token buckets: per client (the
// authenticated subject, else the remote IP) and for the whole process.
// A rate of 0 turns that bucket off. Requests over a limit get 429 with
// Retry-After.
type RateLimit struct {
	PerClient      float64 `yaml:"perClient" env:"PER_CLIENT"`
	PerClientBurst int     `yaml:"perClientBurst" env:"PER_CLIENT_BURST"`
	Global         float64 `yaml:"global" env:"GLOBAL"`
	GlobalBurst    int     `yaml:"globalBurst" env:"GLOBAL_BURST"`
}

// Encryption encrypts every payload the service writes into Temporal.
type Encryption struct {
	// KeysFile holds the AES-256 keys by ID and the ID of the current one
	// (YAML; see the README). Empty: payloads are not encrypted.
	KeysFile string `yaml:"keysFile" env:"KEYS_FILE"`
}

// Tracing configures OpenTelemetry tracing: off unless an OTLP endpoint is
// set.
type Tracing struct {
	// OTLPEndpoint is the OTLP/gRPC collector, host:port; empty: no tracing.
	OTLPEndpoint string `yaml:"otlpEndpoint" env:"OTLP_ENDPOINT"`
	// Insecure sends spans without TLS.
	Insecure bool `yaml:"insecure" env:"INSECURE"`
	// CAFile verifies the collector (system roots when empty); CertFile and
	// KeyFile are a client certificate (mTLS).
	CAFile   string `yaml:"caFile" env:"CA_FILE"`
	CertFile string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile  string `yaml:"keyFile" env:"KEY_FILE"`
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
	// APIKeyFile holds APIKey (a mounted secret; preferred).
	APIKeyFile string `yaml:"apiKeyFile" env:"API_KEY_FILE"`
	TLS        TLS    `yaml:"tls" envPrefix:"TLS_"`
	// Encryption of the payloads written into Temporal.
	Encryption Encryption `yaml:"encryption" envPrefix:"ENCRYPTION_"`
	// SearchAttributes starts every entity with the custom search attributes
	// ArtifactStateUserId, ArtifactStateArtifactId and
	// ArtifactStateHistoryVersion, so operators can list a user's entities;
	// off keeps user IDs out of Temporal's visibility store (they remain in
	// workflow IDs). `artifactstate migrate` registers them.
	SearchAttributes bool `yaml:"searchAttributes" env:"SEARCH_ATTRIBUTES"`
	// Compression of gRPC requests: gzip (the SDK's default, for slow or
	// metered links such as Temporal Cloud) or none (saves CPU next to the
	// cluster; the dev role uses none).
	Compression string `yaml:"compression" env:"COMPRESSION"`
}

// TLS configures a client connection (to Temporal, to Cassandra). Enabled with no files uses the
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
	// HTTP server bounds: a slow client is cut off rather than holding a
	// connection and a goroutine as long as it likes.
	ReadTimeout       time.Duration `yaml:"readTimeout" env:"READ_TIMEOUT"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout" env:"READ_HEADER_TIMEOUT"`
	WriteTimeout      time.Duration `yaml:"writeTimeout" env:"WRITE_TIMEOUT"`
	IdleTimeout       time.Duration `yaml:"idleTimeout" env:"IDLE_TIMEOUT"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes" env:"MAX_HEADER_BYTES"`
	// TLS serves the API over TLS.
	TLS       ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	RateLimit RateLimit `yaml:"rateLimit" envPrefix:"RATE_LIMIT_"`
	// MaxInFlightTemporalCalls bounds the API's concurrent calls to Temporal
	// in this process; past it requests get 503 at once instead of queueing
	// until they time out. 0: no bound.
	MaxInFlightTemporalCalls int `yaml:"maxInFlightTemporalCalls" env:"MAX_IN_FLIGHT_TEMPORAL_CALLS"`
}

// GRPC configures the gRPC API of the api and dev roles (internal/grpcapi).
// Its calls share api.requestTimeout, api.retryAfter and api.shutdownTimeout
// with the HTTP API.
type GRPC struct {
	// ListenAddress of the gRPC API; empty: no gRPC API.
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// TLS serves the gRPC API over TLS (certificate reloaded on change).
	TLS ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	// ClientCAFile (with TLS) requires every client to present a
	// certificate signed by one of its CAs (mTLS).
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
	// Versioning makes the worker a version of a Worker Deployment.
	Versioning Versioning `yaml:"versioning" envPrefix:"VERSIONING_"`
}

// Versioning configures Worker Versioning (Temporal's Worker Deployments):
// the worker polls as version BuildID of DeploymentName, every entity run is
// pinned to the build that started it, new runs (new pairs, and every
// continue-as-new) start on the deployment's current version, and an entity
// moves to a new build only at a continue-as-new: no history is ever
// replayed by a build older than the one that wrote it. See the README's
// release runbook.
type Versioning struct {
	// Enabled turns Worker Versioning on. Off, the worker is unversioned:
	// every worker of the task queue takes any entity, so a rolling deploy
	// replays histories on both the old and the new build.
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// DeploymentName names the Worker Deployment (no '.' or ':').
	DeploymentName string `yaml:"deploymentName" env:"DEPLOYMENT_NAME"`
	// BuildID names this build within the deployment; empty means the
	// binary's commit (the dev role: "dev", one build at a time).
	BuildID string `yaml:"buildId" env:"BUILD_ID"`
	// Promote says when the worker makes its own version current:
	// ifNoCurrent (the deployment has none yet: its first versioned build,
	// or an upgrade from unversioned workers), always (the dev role), or
	// never (an operator, `artifactstate release promote`, or
	// temporal-worker-controller does it).
	Promote string `yaml:"promote" env:"PROMOTE"`
}

// Versioning promotion policies.
const (
	PromoteIfNoCurrent = "ifNoCurrent"
	PromoteAlways      = "always"
	PromoteNever       = "never"
)

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
	// PasswordFile holds Password (a mounted secret; preferred).
	PasswordFile string `yaml:"passwordFile" env:"PASSWORD_FILE"`
	TLS          TLS    `yaml:"tls" envPrefix:"TLS_"`
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
	// ServerMetricsAddress, when set, serves the embedded Temporal server's
	// own Prometheus metrics on this host:port (path /metrics).
	ServerMetricsAddress string `yaml:"serverMetricsAddress" env:"SERVER_METRICS_ADDRESS"`
	// Expose lets the API and admin listeners bind every interface. Without
	// it dev binds them to loopback (a laptop on a shared network exposes
	// nothing).
	Expose bool `yaml:"expose" env:"EXPOSE"`
}

// Default returns the configuration used where nothing else is said.
func Default() Config {
	return Config{
		Log: Log{Level: "info"},
		Temporal: Temporal{
			Address:          "127.0.0.1:7233",
			Namespace:        "default",
			TaskQueue:        "artifactstate-entities",
			Compression:      "gzip",
			SearchAttributes: true,
		},
		API: API{
			ListenAddress:            ":8082",
			RequestTimeout:           5 * time.Second,
			MaxBodyBytes:             16 << 10,
			RetryAfter:               time.Second,
			ShutdownTimeout:          15 * time.Second,
			ReadTimeout:              10 * time.Second,
			ReadHeaderTimeout:        5 * time.Second,
			WriteTimeout:             30 * time.Second,
			IdleTimeout:              2 * time.Minute,
			MaxHeaderBytes:           32 << 10,
			MaxInFlightTemporalCalls: 1000,
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
			Versioning: Versioning{
				Enabled:        true,
				DeploymentName: "artifactstate",
				Promote:        PromoteIfNoCurrent,
			},
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
		Admin:   Admin{ListenAddress: ":9090"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "artifactstate"},
		Auth: Auth{
			SubjectClaim:  "sub",
			ScopeClaim:    "scope",
			ClockSkew:     30 * time.Second,
			ServiceScopes: []string{"artifactstate:service", "artifactstate:admin"},
			AdminScopes:   []string{"artifactstate:admin"},
		},
		Privacy: Privacy{UserIDs: "raw"},
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
	if f := cfg.Cassandra.PasswordFile; f != "" {
		if cfg.Cassandra.Password != "" {
			return cfg, errors.New("cassandra: set password or passwordFile, not both")
		}
		secret, err := ReadSecretFile(f)
		if err != nil {
			return cfg, fmt.Errorf("cassandra.passwordFile: %w", err)
		}
		cfg.Cassandra.Password = secret
	}
	return cfg, nil
}

// ReadSecretFile returns a secret kept in a file (a mounted Kubernetes
// Secret), without the trailing newline editors and `echo` add.
func ReadSecretFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimRight(string(raw), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
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
	if c.Temporal.APIKeyFile != "" {
		if c.Temporal.APIKey != "" {
			bad("temporal.apiKeyFile", "set temporal.apiKey or temporal.apiKeyFile, not both")
		}
		if !c.Temporal.TLS.Enabled {
			bad("temporal.apiKeyFile", "needs temporal.tls.enabled: true (the key must not travel in clear)")
		}
	}
	for _, f := range []struct{ key, path string }{
		{"temporal.apiKeyFile", c.Temporal.APIKeyFile},
		{"temporal.encryption.keysFile", c.Temporal.Encryption.KeysFile},
		{"api.tls.certFile", c.API.TLS.CertFile},
		{"api.tls.keyFile", c.API.TLS.KeyFile},
		{"admin.tls.certFile", c.Admin.TLS.CertFile},
		{"admin.tls.keyFile", c.Admin.TLS.KeyFile},
		{"auth.jwksFile", c.Auth.JWKSFile},
		{"auth.apiKeysFile", c.Auth.APIKeysFile},
		{"privacy.hashKeyFile", c.Privacy.HashKeyFile},
		{"tracing.caFile", c.Tracing.CAFile},
		{"tracing.certFile", c.Tracing.CertFile},
		{"tracing.keyFile", c.Tracing.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.key, "%v", err)
		}
	}
	for key, t := range map[string]ServerTLS{"api.tls": c.API.TLS, "admin.tls": c.Admin.TLS} {
		if (t.CertFile == "") != (t.KeyFile == "") {
			bad(key, "certFile and keyFile go together")
		}
	}
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
	positive("api.readTimeout", c.API.ReadTimeout)
	positive("api.readHeaderTimeout", c.API.ReadHeaderTimeout)
	positive("api.writeTimeout", c.API.WriteTimeout)
	positive("api.idleTimeout", c.API.IdleTimeout)
	if c.API.WriteTimeout <= c.API.RequestTimeout {
		bad("api.writeTimeout", "must be longer than api.requestTimeout (%v), or answers would be cut off, got %v", c.API.RequestTimeout, c.API.WriteTimeout)
	}
	if c.API.MaxHeaderBytes < 4096 {
		bad("api.maxHeaderBytes", "must be at least 4096, got %d", c.API.MaxHeaderBytes)
	}
	if c.API.MaxInFlightTemporalCalls < 0 {
		bad("api.maxInFlightTemporalCalls", "must be 0 (no bound) or positive, got %d", c.API.MaxInFlightTemporalCalls)
	}
	for _, b := range []struct {
		key   string
		rate  float64
		burst int
	}{
		{"api.rateLimit.perClient", c.API.RateLimit.PerClient, c.API.RateLimit.PerClientBurst},
		{"api.rateLimit.global", c.API.RateLimit.Global, c.API.RateLimit.GlobalBurst},
	} {
		if b.rate < 0 {
			bad(b.key, "must be 0 (off) or a positive rate per second, got %v", b.rate)
		}
		if b.rate > 0 && b.burst < 1 {
			bad(b.key+"Burst", "must be at least 1 when %s is set, got %d", b.key, b.burst)
		}
	}
	errs = append(errs, c.Auth.validate()...)
	switch c.Privacy.UserIDs {
	case "raw", "drop":
	case "hash":
		if c.Privacy.HashKeyFile == "" {
			bad("privacy.hashKeyFile", "is required when privacy.userIds is hash")
		}
	default:
		bad("privacy.userIds", "must be raw, hash or drop, got %q", c.Privacy.UserIDs)
	}
	if v := c.Worker.Versioning; v.Enabled {
		if v.DeploymentName == "" || strings.ContainsAny(v.DeploymentName, ".:") || strings.HasPrefix(v.DeploymentName, "__") {
			bad("worker.versioning.deploymentName", "must be a non-empty name without '.' or ':', not starting with '__', got %q", v.DeploymentName)
		}
		if strings.HasPrefix(v.BuildID, "__") {
			bad("worker.versioning.buildId", "must not start with '__', got %q", v.BuildID)
		}
		switch v.Promote {
		case PromoteIfNoCurrent, PromoteAlways, PromoteNever:
		default:
			bad("worker.versioning.promote", "must be %s, %s or %s, got %q", PromoteIfNoCurrent, PromoteAlways, PromoteNever, v.Promote)
		}
	}
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
	if err := checkHostPort(c.Admin.ListenAddress, true); err != nil {
		bad("admin.listenAddress", "%v", err)
	} else if _, adminPort, _ := net.SplitHostPort(c.Admin.ListenAddress); adminPort != "0" && strings.HasSuffix(c.API.ListenAddress, ":"+adminPort) {
		bad("admin.listenAddress", "must be another port than api.listenAddress (the admin endpoints stay off the public port)")
	}
	if c.Tracing.OTLPEndpoint != "" {
		if err := checkHostPort(c.Tracing.OTLPEndpoint, false); err != nil {
			bad("tracing.otlpEndpoint", "%v", err)
		}
	}
	if (c.Tracing.CertFile == "") != (c.Tracing.KeyFile == "") {
		bad("tracing", "certFile and keyFile go together")
	}
	if c.Tracing.Insecure && (c.Tracing.CAFile != "" || c.Tracing.CertFile != "") {
		bad("tracing.insecure", "contradicts tracing.caFile/certFile")
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
	if c.Dev.ServerMetricsAddress != "" {
		if err := checkHostPort(c.Dev.ServerMetricsAddress, false); err != nil {
			bad("dev.serverMetricsAddress", "%v", err)
		}
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
	if (g.TLS.CertFile == "") != (g.TLS.KeyFile == "") {
		errs = append(errs, errors.New("grpc.tls: certFile and keyFile go together"))
	}
	if g.ClientCAFile != "" {
		if !g.TLS.Enabled() {
			errs = append(errs, errors.New("grpc.clientCAFile: needs grpc.tls (client certificates travel over TLS)"))
		}
		if _, err := os.Stat(g.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("grpc.clientCAFile: %v", err))
		}
	}
	return errs
}

func (a Auth) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !a.Enabled {
		return nil
	}
	if a.JWKSURL == "" && a.JWKSFile == "" && a.APIKeysFile == "" {
		bad("enabled", "needs auth.jwksURL, auth.jwksFile or auth.apiKeysFile")
	}
	if a.JWKSURL != "" {
		if u, err := url.Parse(a.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("jwksURL", "must be an https:// URL, got %q", a.JWKSURL)
		}
	}
	if a.JWKSURL != "" || a.JWKSFile != "" {
		if a.Issuer == "" {
			bad("issuer", "is required with JWTs (tokens of other issuers must not be accepted)")
		}
		if a.Audience == "" {
			bad("audience", "is required with JWTs (tokens meant for other services must not be accepted)")
		}
	}
	if a.SubjectClaim == "" {
		bad("subjectClaim", "must not be empty")
	}
	if a.ScopeClaim == "" {
		bad("scopeClaim", "must not be empty")
	}
	if a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute {
		bad("clockSkew", "must be between 0 and 5m, got %v", a.ClockSkew)
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
