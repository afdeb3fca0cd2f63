// Package devserver runs a complete Temporal server (frontend, history,
// matching, internal worker) and optionally its Web UI inside this process,
// persisted to SQLite: the engine of the `dev` role and of the integration
// tests.
package devserver

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	temporallog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	persistencesql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/artifactstate/artifactstate/internal/searchattr"
)

// Options configure an embedded server.
type Options struct {
	// IP the frontend and UI bind to, e.g. 127.0.0.1.
	IP string
	// FrontendPort is the gRPC port clients and the temporal CLI use.
	FrontendPort int
	// UIPort serves the Web UI; 0 runs no UI.
	UIPort int
	// DatabaseFile persists everything to SQLite at this path (created with
	// its schema on first use); empty keeps everything in memory.
	DatabaseFile string
	// Namespaces are created if missing.
	Namespaces []string
	// Logger receives the server's logs at LogLevel and above.
	Logger   *slog.Logger
	LogLevel slog.Level
	// AllVisibilityIndexes keeps every visibility index of Temporal's
	// schema in a new store (by default the ones no tool here needs are
	// dropped: pruneVisibilityIndexes).
	AllVisibilityIndexes bool
	// DynamicConfig overrides server settings (tests use it to shrink limits).
	DynamicConfig map[string]any
	// TLS makes the frontend serve TLS, and require client certificates
	// when it names a ClientCAFile; nil serves plaintext.
	TLS *TLS
	// CodecEndpoint is the payload codec the Web UI decodes payloads with
	// (the admin listener's /codec), empty for none.
	CodecEndpoint string
	// HistoryShards is the number of history shards of a new database (an
	// existing one keeps its own); 0 means 1.
	HistoryShards int32
	// Retention is how long Temporal keeps the history of a closed workflow
	// in namespaces this server creates; 0 means 24 hours.
	Retention time.Duration
	// MetricsAddress, when set, serves the server's own Prometheus metrics
	// (persistence requests, task queues, shards: what Temporal's server
	// dashboards show) on this host:port at /metrics.
	MetricsAddress string
	// SQLiteConnections is the size of the connection pool to a database
	// file (WAL allows concurrent readers beside the one writer); 0 means 1.
	SQLiteConnections int
}

// TLS configures the frontend's TLS. The server's own clients (its system
// worker, the Web UI) connect with the system certificate.
type TLS struct {
	// CertFile and KeyFile are the frontend's certificate, valid for
	// 127.0.0.1 or localhost.
	CertFile, KeyFile string
	// CAFile verifies the frontend's certificate (for the server's own
	// clients).
	CAFile string
	// ClientCAFile, when set, makes the frontend require client
	// certificates signed by it (mTLS).
	ClientCAFile string
	// SystemCertFile and SystemKeyFile are the client certificate of the
	// server's own clients; required with ClientCAFile.
	SystemCertFile, SystemKeyFile string
}

// FilePragmas are the SQLite pragmas of a database file, as the keys
// Temporal's SQLite plugin passes on (an unknown key becomes a pragma of that
// name, which SQLite ignores: read them back from the live database, as the
// tests do). WAL with synchronous=NORMAL survives a crash of the process (an
// acknowledged write is in the operating system's cache) but not a power
// loss or kernel crash, which may lose the last transactions, like
// Cassandra's default periodic commit log; it is several times faster than
// the default rollback journal, which syncs every transaction. busy_timeout
// makes a connection wait for the writer's lock instead of failing.
var FilePragmas = map[string]string{
	"journal_mode": "wal",
	"synchronous":  "normal",
	"busy_timeout": "10000",
}

// devDynamicConfig lifts the per-host rate limits a production cluster
// spreads over many hosts (matching.rps is 1200 by default): in one process
// every call lands on one host, and the limits, not the machine, would cap
// throughput ("namespace rate limit exceeded").
//
// One partition per task queue: partitions spread a queue over matching
// hosts, and with one host they only forward polls and tasks between
// themselves (measured: 2–6 % more calls/s in the closed 50/50 load,
// docs/benchmarks.md).
//
// history.MaxBufferedQueryCount is how many strong queries may wait on one
// entity while it processes a workflow task (default 1: concurrent readers
// of a pair being written were refused with BUSY_WORKFLOW and retried with
// backoff).
var devDynamicConfig = map[string]any{
	"frontend.rps":                  100000,
	"frontend.namespaceRPS":         100000,
	"matching.rps":                  100000,
	"history.rps":                   100000,
	"history.MaxBufferedQueryCount": 64,

	"matching.numTaskqueueReadPartitions":  1,
	"matching.numTaskqueueWritePartitions": 1,
}

// Server is a running embedded Temporal server.
type Server struct {
	temporal temporal.Server
	ui       *uiserver.Server
	opts     Options
	quiet    atomic.Bool
}

// New checks the options and prepares a server; Start runs it.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		return nil, errors.New("devserver: Logger is required")
	}
	if len(opts.Namespaces) == 0 {
		return nil, errors.New("devserver: at least one namespace is required")
	}
	if opts.IP == "" || opts.FrontendPort == 0 {
		return nil, errors.New("devserver: IP and FrontendPort are required")
	}
	if t := opts.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" ||
		(t.ClientCAFile != "" && (t.SystemCertFile == "" || t.SystemKeyFile == ""))) {
		return nil, errors.New("devserver: TLS needs CertFile, KeyFile and CAFile, and with ClientCAFile SystemCertFile and SystemKeyFile")
	}
	return &Server{opts: opts}, nil
}

// Start starts the server and returns once its frontend accepts calls.
func (s *Server) Start() error {
	opts := s.opts
	for _, p := range []int{opts.FrontendPort, opts.UIPort} {
		if p == 0 {
			continue
		}
		if err := checkFree(opts.IP, p); err != nil {
			return err
		}
	}
	conf, err := serverConfig(opts)
	if err != nil {
		return err
	}
	logger := newServerLogger(opts.Logger, opts.LogLevel, &s.quiet)
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return fmt.Errorf("devserver authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return fmt.Errorf("devserver claim mapper: %w", err)
	}
	serverOpts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
	}
	dc := make(dynamicconfig.StaticClient)
	for k, v := range devDynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range opts.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	serverOpts = append(serverOpts, temporal.WithDynamicConfigClient(dc))
	srv, err := newTemporalServer(serverOpts)
	if err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	s.quiet.Store(true)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("devserver start: %w", err)
	}
	s.quiet.Store(false)
	s.temporal = srv
	if opts.UIPort != 0 {
		uiConf := &uiconfig.Config{
			Host:                opts.IP,
			Port:                opts.UIPort,
			TemporalGRPCAddress: s.FrontendAddress(),
			EnableUI:            true,
			DefaultNamespace:    opts.Namespaces[0],
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			DisableNewsFetch:    true,
			Codec:               uiconfig.Codec{Endpoint: opts.CodecEndpoint},
		}
		if t := opts.TLS; t != nil {
			uiConf.TLS = uiconfig.TLS{CaFile: t.CAFile, CertFile: t.SystemCertFile, KeyFile: t.SystemKeyFile,
				ServerName: "localhost", EnableHostVerification: true}
		}
		s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(uiConf))
		go func() {
			if err := s.ui.Start(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				opts.Logger.Error("Temporal Web UI stopped", "error", err)
			}
		}()
	}
	return nil
}

// FrontendAddress is the host:port of the gRPC frontend.
func (s *Server) FrontendAddress() string {
	return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.FrontendPort))
}

// UIAddress is the Web UI's URL, empty when no UI runs.
func (s *Server) UIAddress() string {
	if s.opts.UIPort == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
}

// Stop stops the UI and the server; the server closes its SQLite database.
func (s *Server) Stop() error {
	s.quiet.Store(true)
	if s.ui != nil {
		s.ui.Stop()
	}
	if s.temporal == nil {
		return nil
	}
	return s.temporal.Stop()
}

func serverConfig(opts Options) (*config.Config, error) {
	sqlConf, err := sqliteConfig(opts)
	if err != nil {
		return nil, err
	}
	conf := &config.Config{}
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"}
	conf.Persistence = config.Persistence{
		DefaultStore:     "sqlite",
		VisibilityStore:  "sqlite",
		NumHistoryShards: max(opts.HistoryShards, 1),
		DataStores:       map[string]config.DataStore{"sqlite": {SQL: sqlConf}},
	}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.FrontendPort))},
		},
	}
	conf.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		svc := config.Service{}
		if svc.RPC.MembershipPort, err = FreePort(); err != nil {
			return nil, err
		}
		if name == "frontend" {
			svc.RPC.GRPCPort, svc.RPC.BindOnIP = opts.FrontendPort, opts.IP
			// The HTTP API (Nexus endpoints) on any free port.
			if svc.RPC.HTTPPort, err = FreePort(); err != nil {
				return nil, err
			}
		} else {
			svc.RPC.BindOnLocalHost = true
			if svc.RPC.GRPCPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.FrontendPort))
	if opts.MetricsAddress != "" {
		conf.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
			Framework: metrics.FrameworkOpentelemetry, ListenAddress: opts.MetricsAddress, HandlerPath: "/metrics"}}
	}
	if t := opts.TLS; t != nil {
		client := config.ClientTLS{RootCAFiles: []string{t.CAFile}, ServerName: "localhost"}
		conf.Global.TLS.Frontend = config.GroupTLS{
			Server: config.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile},
			Client: client,
		}
		if t.ClientCAFile != "" {
			conf.Global.TLS.Frontend.Server.ClientCAFiles = []string{t.ClientCAFile}
			conf.Global.TLS.Frontend.Server.RequireClientAuth = true
		}
		conf.Global.TLS.SystemWorker = config.WorkerTLS{CertFile: t.SystemCertFile, KeyFile: t.SystemKeyFile, Client: client}
	}
	return conf, nil
}

// sqliteConfig prepares the database: schema on a new file, namespaces.
func sqliteConfig(opts Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	fresh := true // a new store: its visibility indexes are pruned
	if opts.DatabaseFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = "artifactstate-" + strconv.FormatUint(rand.Uint64(), 36)
	} else {
		conf.ConnectAttributes = map[string]string{"mode": "rwc"}
		maps.Copy(conf.ConnectAttributes, FilePragmas)
		conf.MaxConns, conf.MaxIdleConns = max(opts.SQLiteConnections, 1), max(opts.SQLiteConnections, 1)
		conf.DatabaseName = opts.DatabaseFile
		if _, err := os.Stat(opts.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o755); err != nil {
				return nil, fmt.Errorf("devserver data dir: %w", err)
			}
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("devserver SQLite schema: %w", err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("devserver database file: %w", err)
		} else if err := forgetMembers(opts.DatabaseFile); err != nil {
			return nil, err
		} else {
			fresh = false
		}
	}
	var namespaces []*sqliteschema.NamespaceConfig
	for _, ns := range opts.Namespaces {
		nc, err := sqliteschema.NewNamespaceConfig("active", ns, false, searchattr.Definitions())
		if err != nil {
			return nil, fmt.Errorf("devserver namespace %s: %w", ns, err)
		}
		if opts.Retention > 0 {
			nc.Detail.Config.Retention = durationpb.New(opts.Retention)
		}
		namespaces = append(namespaces, nc)
	}
	if err := sqliteschema.CreateNamespaces(conf, namespaces...); err != nil {
		return nil, fmt.Errorf("devserver namespaces: %w", err)
	}
	if fresh && !opts.AllVisibilityIndexes {
		var used []string
		for _, nc := range namespaces {
			for field := range nc.Detail.GetConfig().GetCustomSearchAttributeAliases() {
				if !slices.Contains(used, field) {
					used = append(used, field)
				}
			}
		}
		if err := pruneVisibilityIndexes(conf, used); err != nil {
			return nil, err
		}
	}
	return conf, nil
}

// Visibility indexes. Temporal's SQLite schema indexes every system and
// custom search attribute slot of every execution: 58 indexes, each holding
// an entry per run even where the attribute is unset. On a store of entities
// they were 72 % of the bytes per new pair and, with the inserts behind them,
// about a third of the CPU of creating one (docs/benchmarks.md, "Where a new
// pair's cost goes"). A new store keeps the ones below: the default listing,
// the lookups the Web UI, the temporal CLI, this service's tools and
// Temporal's own workers make (by workflow ID, type, status, task queue,
// execution time; Worker Versioning's drainage and `release status`), and
// those of the custom search attributes the namespaces map. A query on an
// attribute whose index was dropped still works, by a scan.
var (
	visibilityIndexesKept = []string{
		"default_idx", "by_execution_time", "by_workflow_id", "by_workflow_type", "by_status", "by_task_queue",
		"by_temporal_worker_deployment_version", "by_temporal_workflow_versioning_behavior", "by_temporal_worker_deployment",
	}
	visibilityIndexesSystemDropped = []string{
		"by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count",
		"by_parent_workflow_id", "by_parent_run_id", "by_root_workflow_id", "by_root_run_id",
		"by_batcher_user", "by_temporal_scheduled_start_time", "by_temporal_scheduled_by_id",
		"by_temporal_schedule_paused", "by_temporal_namespace_division", "by_temporal_pause_info",
		"by_temporal_low_cardinality_keyword_01",
	}
	// visibilitySlots are the slots of each type, custom and Temporal's own.
	visibilitySlots = map[string]struct{ custom, temporal int }{
		"bool": {3, 2}, "datetime": {3, 2}, "double": {3, 2}, "int": {3, 2}, "keyword": {10, 4},
	}
)

// VisibilityIndexesKept are the visibility indexes a new store whose
// namespaces map the custom search attribute fields usedFields (Keyword01,
// Int02) keeps, sorted.
func VisibilityIndexesKept(usedFields []string) []string {
	kept := slices.Clone(visibilityIndexesKept)
	for _, field := range usedFields {
		kept = append(kept, slotIndex(field))
	}
	slices.Sort(kept)
	return kept
}

// slotIndex is the name of the index on a custom search attribute field:
// Keyword06 → by_keyword_06.
func slotIndex(field string) string {
	i := strings.IndexFunc(field, func(r rune) bool { return r >= '0' && r <= '9' })
	if i < 0 {
		return ""
	}
	return "by_" + strings.ToLower(field[:i]) + "_" + field[i:]
}

// pruneVisibilityIndexes drops the visibility indexes a new store does not
// keep, through the plugin's own connection (an in-memory store exists only
// there).
func pruneVisibilityIndexes(conf *config.SQL, usedFields []string) error {
	keep := VisibilityIndexesKept(usedFields)
	drop := slices.Clone(visibilityIndexesSystemDropped)
	for typ, n := range visibilitySlots {
		for i := 1; i <= n.custom; i++ {
			drop = append(drop, fmt.Sprintf("by_%s_%02d", typ, i))
		}
		for i := 1; i <= n.temporal; i++ {
			drop = append(drop, fmt.Sprintf("by_temporal_%s_%02d", typ, i))
		}
	}
	db, err := persistencesql.NewSQLAdminDB(sqlplugin.DbKindUnknown, conf, resolver.NewNoopResolver(), temporallog.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("devserver open the store to prune its visibility indexes: %w", err)
	}
	defer func() { _ = db.Close() }()
	for _, name := range drop {
		if slices.Contains(keep, name) {
			continue
		}
		if err := db.Exec("DROP INDEX IF EXISTS " + name); err != nil {
			return fmt.Errorf("devserver drop visibility index %s: %w", name, err)
		}
	}
	return nil
}

// forgetMembers deletes the cluster membership rows a previous process left
// in the database. Its services listened on other ports; while their rows look
// fresh the new server waits for them and answers "Not enough hosts to serve
// the request" for up to a minute after a quick restart.
func forgetMembers(path string) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("devserver open %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("devserver reset cluster membership in %s: %w", path, err)
	}
	return nil
}

// newTemporalServer is temporal.NewServer with a fatal log turned back into an
// error: the server binds its services' ports while it is built, and a port
// taken in the meantime makes it log Fatal, which our logger turns into a
// panic (see serverLogger). The caller, say a test that picked free ports,
// gets an error it can act on (testenv starts again on other ports).
func newTemporalServer(opts []temporal.ServerOption) (srv temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the server could not be built: %v", r)
		}
	}()
	return temporal.NewServer(opts...)
}

func checkFree(ip string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("devserver: port %d on %s is not free (is another Temporal or artifactstate running?): %w", port, ip, err)
	}
	return ln.Close()
}

// FreePort finds a loopback port nobody listens on now, below the kernel's
// ephemeral range: a port from that range (what listening on port 0 hands
// out) can be taken, before the caller binds it, by the local end of any
// outgoing connection, which on a machine running tests in parallel
// happened ("bind: address already in use"). Ports handed out once are not
// handed out again by this process.
func FreePort() (int, error) {
	low := ephemeralLow()
	for range 200 {
		port := low - 1 - rand.IntN(min(low-1024, 12000))
		if _, taken := portsHandedOut.LoadOrStore(port, true); taken {
			continue
		}
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return port, ln.Close()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devserver: no free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var portsHandedOut sync.Map

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low < 2048 {
		return 32768
	}
	return low
}
