package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/cli"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/reconcile"
	"github.com/artifactstate/artifactstate/internal/searchattr"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/worker"
)

func newDevCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: embedded Temporal (SQLite) + Web UI + worker + API",
		Long: `Runs an embedded Temporal server persisted to SQLite under --data-dir (so a
restart keeps every entity; --in-memory keeps nothing), its Web UI, the worker
and the API. The temporal CLI works against the frontend (default 127.0.0.1:7233).
Every listener binds loopback unless --expose (dev.expose): authentication is
off in dev, so an exposed dev process lets anyone on the network use it.`,
		Args: cobra.NoArgs,
	}
	s := cli.NewSettings(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.CassandraFlags(cmd.Flags())
	s.StringFlag(cmd.Flags(), "listen", "API listen address", func(c *config.Config, v string) { c.API.ListenAddress = v })
	s.StringFlag(cmd.Flags(), "grpc-listen", "gRPC API listen address, e.g. :8083 (empty: no gRPC API)", func(c *config.Config, v string) { c.GRPC.ListenAddress = v })
	// The dev section's flags, applied after the file and the environment.
	dataDir := cmd.Flags().String("data-dir", "", "directory of the SQLite database")
	inMemory := cmd.Flags().Bool("in-memory", false, "keep Temporal's data in memory only")
	expose := cmd.Flags().Bool("expose", false, "let the API, gRPC and admin listeners bind every interface (default: loopback only)")
	noWorker := cmd.Flags().Bool("no-worker", false,
		"run no worker in this process (start `artifactstate worker` processes against its frontend instead)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg := defaultDevConfig()
		if err := s.LoadInto(cmd.Flags(), &cfg); err != nil {
			return err
		}
		fs := cmd.Flags()
		if fs.Changed("data-dir") {
			cfg.Dev.DataDir = *dataDir
		}
		if fs.Changed("in-memory") {
			cfg.Dev.InMemory = *inMemory
		}
		if fs.Changed("expose") {
			cfg.Dev.Expose = *expose
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		tuneGC()
		opts := embed(&cfg)
		logger, err := cli.NewLogger(cfg.Config, "dev", "text")
		if err != nil {
			return err
		}
		opts.Logger = logger
		logger.Info("Dev configuration", "dev", cfg.Dev)
		return cli.RunApp(cfg.Config, logger, devModules(opts, !*noWorker)...)
	}
	return cmd
}

// embed points the roles at the embedded server and, unless dev.expose,
// binds their listeners to loopback; it returns the embedded server's
// options (the logger still to set).
func embed(cfg *devConfig) devserver.Options {
	// The worker and the API talk to the embedded server.
	cfg.Temporal.Address = net.JoinHostPort(cfg.Dev.IP, strconv.Itoa(cfg.Dev.FrontendPort))
	cfg.Temporal.TLS = config.TLS{}
	cfg.Temporal.APIKey = ""
	cfg.Temporal.Compression = "none" // loopback: compression only costs CPU
	// One build at a time on this store: its entities are pinned to the
	// build ID "dev", which every build of the dev role shares and makes
	// current, so a new binary takes them over at their next task, as an
	// unversioned rolling deploy would (the replay corpus guards that), and
	// new runs record their history version instead of version markers.
	if cfg.Worker.Versioning.BuildID == "" {
		cfg.Worker.Versioning.BuildID = "dev"
	}
	cfg.Worker.Versioning.Promote = config.PromoteAlways
	if !cfg.Dev.Expose {
		cfg.API.ListenAddress = config.Loopback(cfg.API.ListenAddress)
		cfg.Admin.ListenAddress = config.Loopback(cfg.Admin.ListenAddress)
		if cfg.GRPC.ListenAddress != "" {
			cfg.GRPC.ListenAddress = config.Loopback(cfg.GRPC.ListenAddress)
		}
	}
	opts := devserver.Options{
		IP:             cfg.Dev.IP,
		FrontendPort:   cfg.Dev.FrontendPort,
		UIPort:         cfg.Dev.UIPort,
		MetricsAddress: cfg.Dev.ServerMetricsAddress,
		Namespaces:     []string{cfg.Temporal.Namespace},
		LogLevel:       slog.LevelWarn,
	}
	if !cfg.Dev.InMemory {
		opts.DatabaseFile = filepath.Join(cfg.Dev.DataDir, "temporal.db")
	}
	if cfg.Temporal.Encryption.KeysFile != "" && cfg.Dev.UIPort != 0 {
		// The embedded Web UI decodes payloads through our codec.
		opts.CodecEndpoint = "http://" + config.Dialable(cfg.Admin.ListenAddress) + "/codec"
		cfg.Admin.CodecCORSOrigins = append(cfg.Admin.CodecCORSOrigins,
			"http://"+net.JoinHostPort(cfg.Dev.IP, strconv.Itoa(cfg.Dev.UIPort)))
	}
	return opts
}

// devModules are the dev role's: the embedded server, then every role's
// (the worker's unless withWorker is false: --no-worker).
func devModules(opts devserver.Options, withWorker bool) []fx.Option {
	modules := []fx.Option{devserver.Module(opts), readmodel.MigrateModule, temporalclient.Module, searchattr.Module, readmodel.Module,
		entities.Module, pairs.Module, auth.Module, apiguard.Module, server.Module, grpcapi.Module, ops.Module}
	if withWorker {
		modules = append(modules, worker.Module, reconcile.Module)
	}
	return modules
}

// devGCPercent is the garbage collector's target of the all-in-one process
// unless GOGC says otherwise: the embedded server allocates heavily, and at
// Go's default (100) the collector took about a fifth of the CPU under load;
// 400 measured 15-40 % more calls per second for about 0.4 GB more memory
// (docs/benchmarks.md).
const devGCPercent = 400

// devMemoryLimit is the collector's soft memory limit unless GOMEMLIMIT
// says otherwise: with GOGC 400 alone the process grew to 1.8 GB resident
// under a 50/50 load on 6,000 pairs (sticky cache 2,000); with this limit it
// stayed at 1.47 GB for the same calls per second within the runs' noise
// (docs/benchmarks.md, "Memory").
const devMemoryLimit = 1400 << 20

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(devGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(devMemoryLimit)
	}
}
