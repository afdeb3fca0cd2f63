package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/reconcile"
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
and the API. The temporal CLI works against the frontend (default 127.0.0.1:7233).`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd.Flags())
	s.logFlags(cmd.Flags())
	s.cassandraFlags(cmd.Flags())
	s.stringFlag(cmd.Flags(), "listen", "API listen address", func(c *config.Config, v string) { c.API.ListenAddress = v })
	s.stringFlag(cmd.Flags(), "grpc-listen", "gRPC API listen address, e.g. :8083 (empty: no gRPC API)", func(c *config.Config, v string) { c.GRPC.ListenAddress = v })
	s.stringFlag(cmd.Flags(), "data-dir", "directory of the SQLite database", func(c *config.Config, v string) { c.Dev.DataDir = v })
	s.boolFlag(cmd.Flags(), "in-memory", "keep Temporal's data in memory only", func(c *config.Config, v bool) { c.Dev.InMemory = v })
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd.Flags())
		if err != nil {
			return err
		}
		tuneGC()
		// The worker and the API talk to the embedded server.
		cfg.Temporal.Address = net.JoinHostPort(cfg.Dev.IP, strconv.Itoa(cfg.Dev.FrontendPort))
		cfg.Temporal.TLS = config.TLS{}
		cfg.Temporal.APIKey = ""
		cfg.Temporal.Compression = "none" // loopback: compression only costs CPU
		logger, err := newLogger(cfg, "dev", "text")
		if err != nil {
			return err
		}
		opts := devserver.Options{
			IP:           cfg.Dev.IP,
			FrontendPort: cfg.Dev.FrontendPort,
			UIPort:       cfg.Dev.UIPort,
			Namespaces:   []string{cfg.Temporal.Namespace},
			Logger:       logger,
			LogLevel:     slog.LevelWarn,
		}
		if !cfg.Dev.InMemory {
			opts.DatabaseFile = filepath.Join(cfg.Dev.DataDir, "temporal.db")
		}
		return runApp(cfg, logger,
			devserver.Module(opts), readmodel.MigrateModule, temporalclient.Module, readmodel.Module,
			entities.Module, worker.Module, reconcile.Module, server.Module, grpcapi.Module)
	}
	return cmd
}

// devGCPercent is the garbage collector's target of the all-in-one process
// unless GOGC says otherwise: the embedded server allocates heavily, and at
// Go's default (100) the collector took about a fifth of the CPU under load;
// 400 measured 15-40 % more calls per second for about 0.4 GB more memory
// (docs/benchmarks.md).
const devGCPercent = 400

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(devGCPercent)
	}
}
