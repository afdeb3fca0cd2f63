package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/logging"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/privacy"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/internal/tracing"
)

// NewRoot is the command tree of the production binary (cmd/artifactstate)
// plus extra, the development binary's commands (dev/cmd/artifactstate: dev,
// bench, record-histories), which link the embedded Temporal server.
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "artifactstate",
		Short: "Per-(user, artifact) read and feed state on Temporal entity workflows",
		Long: `artifactstate keeps, for every (user, artifact) pair, whether the user read the
artifact and whether it is in the user's feed. Pick a role:

  api     the REST API (stateless; scale it freely)
  worker  runs the entity workflows (scale it freely)
  dev     embedded Temporal server + Web UI + worker + API in one process
          (only in the development binary, bin/artifactstate; the production
          binary and image, bin/artifactstate-prod, leave the embedded server out)

Configuration: defaults < --config YAML file < ARTIFACTSTATE_* environment < flags.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAPICommand(), newWorkerCommand(), newMigrateCommand(), newLoadtestCommand(),
		newReplayCommand(), newStuckCommand(), newReleaseCommand(), &cobra.Command{
			Use:   "version",
			Short: "Print the version and commit",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				cmd.Printf("artifactstate %s (commit %s)\n", version, commit)
			},
		})
	root.AddCommand(extra...)
	return root
}

// Settings collects the config file flag and the flags that override single
// configuration keys.
type Settings struct {
	configPath string
	overrides  []override
}

type override struct {
	flag  string
	apply func(*config.Config)
}

// NewSettings registers --config on fs; the role adds its own flags.
func NewSettings(fs *pflag.FlagSet) *Settings {
	s := &Settings{}
	fs.StringVarP(&s.configPath, "config", "c", os.Getenv("ARTIFACTSTATE_CONFIG"), "YAML configuration file (env ARTIFACTSTATE_CONFIG)")
	return s
}

// StringFlag adds a flag that, when given, sets one configuration key.
func (s *Settings) StringFlag(fs *pflag.FlagSet, name, usage string, set func(*config.Config, string)) {
	v := fs.String(name, "", usage)
	s.overrides = append(s.overrides, override{name, func(c *config.Config) { set(c, *v) }})
}

// BoolFlag is StringFlag for a boolean key.
func (s *Settings) BoolFlag(fs *pflag.FlagSet, name, usage string, set func(*config.Config, bool)) {
	v := fs.Bool(name, false, usage)
	s.overrides = append(s.overrides, override{name, func(c *config.Config) { set(c, *v) }})
}

// TemporalFlags adds the Temporal address, namespace and task queue flags.
func (s *Settings) TemporalFlags(fs *pflag.FlagSet) {
	s.StringFlag(fs, "temporal-address", "Temporal frontend host:port", func(c *config.Config, v string) { c.Temporal.Address = v })
	s.StringFlag(fs, "namespace", "Temporal namespace", func(c *config.Config, v string) { c.Temporal.Namespace = v })
	s.StringFlag(fs, "task-queue", "task queue of the entity workflows", func(c *config.Config, v string) { c.Temporal.TaskQueue = v })
}

// CassandraFlags adds --cassandra-hosts.
func (s *Settings) CassandraFlags(fs *pflag.FlagSet) {
	s.StringFlag(fs, "cassandra-hosts", "Cassandra contact points, comma-separated host[:port] (empty: no read model)",
		func(c *config.Config, v string) { c.Cassandra.Hosts = SplitList(v) })
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LogFlags adds --log-level.
func (s *Settings) LogFlags(fs *pflag.FlagSet) {
	s.StringFlag(fs, "log-level", "debug, info, warn or error", func(c *config.Config, v string) { c.Log.Level = v })
}

// Load returns the validated configuration, flags applied last.
func (s *Settings) Load(fs *pflag.FlagSet) (config.Config, error) {
	cfg := config.Default()
	if err := s.LoadInto(fs, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// LoadInto is Load for a configuration with sections of its own (the dev
// command's): cfg, set to its defaults, is read from the file and the
// environment, then the flags of these Settings are applied. The caller
// applies its own flags and validates the whole.
func (s *Settings) LoadInto(fs *pflag.FlagSet, cfg config.Extended) error {
	if err := config.LoadInto(s.configPath, nil, cfg); err != nil {
		return err
	}
	for _, o := range s.overrides {
		if fs.Changed(o.flag) {
			o.apply(cfg.Root())
		}
	}
	return nil
}

// NewLogger is the process logger; format is used when log.format is empty.
func NewLogger(cfg config.Config, role, format string) (*slog.Logger, error) {
	logger, err := logging.New(cfg.Log, format, os.Stderr)
	if err != nil {
		return nil, err
	}
	redactor, err := privacy.New(cfg.Privacy)
	if err != nil {
		return nil, err
	}
	return slog.New(privacy.Handler(logger.Handler(), redactor)).With("role", role), nil
}

// RunApp runs an fx app of the given modules until SIGINT/SIGTERM, then
// stops it in reverse order.
func RunApp(cfg config.Config, logger *slog.Logger, modules ...fx.Option) error {
	logger.Info("Starting artifactstate", "version", version, "commit", commit, "config", cfg.Redacted())
	fx.New(app(cfg, logger, modules...)).Run()
	return nil
}

// ValidateApp checks, without running anything, that the app of the given
// modules is given everything its modules ask for.
func ValidateApp(cfg config.Config, logger *slog.Logger, modules ...fx.Option) error {
	return fx.ValidateApp(app(cfg, logger, modules...))
}

// app is the fx app of a role: the configuration's sections, the logger,
// metrics and tracing, and the role's modules.
func app(cfg config.Config, logger *slog.Logger, modules ...fx.Option) fx.Option {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown-host"
	}
	if cfg.Worker.Versioning.BuildID == "" {
		cfg.Worker.Versioning.BuildID = BuildID()
	}
	identity := cfg.Worker.Identity
	if identity == "" {
		identity = fmt.Sprintf("%d@%s", os.Getpid(), hostname)
	}
	return fx.Options(
		// Each module takes the sections of the configuration it reads.
		fx.Supply(cfg.Sections()...),
		fx.Supply(logger, temporalclient.Identity(identity),
			metrics.BuildInfo{Version: version, Commit: commit}, tracing.Version(version)),
		metrics.Module,
		tracing.Module,
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StartTimeout(time.Minute),
		// Long enough for in-flight requests and activities to finish.
		fx.StopTimeout(cfg.API.ShutdownTimeout+cfg.Worker.StopTimeout+10*time.Second),
		fx.Options(modules...),
	)
}
