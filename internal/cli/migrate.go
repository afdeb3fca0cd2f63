package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/searchattr"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
)

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the Cassandra read model, and register the search attributes in Temporal, then exit",
		Long: `Creates the keyspace (replication from cassandra.replication) if it is missing and
applies the embedded schema files not yet recorded in its schema_migrations table
(when cassandra.hosts is set); registers the entities' custom search attributes in
temporal.namespace (when temporal.searchAttributes is on). Safe to run again, and
concurrently.`,
		Args: cobra.NoArgs,
	}
	s := NewSettings(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.CassandraFlags(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	timeout := cmd.Flags().Duration("timeout", 5*time.Minute, "give up after this long")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.Load(cmd.Flags())
		if err != nil {
			return err
		}
		if !cfg.Cassandra.Enabled() && !cfg.Temporal.SearchAttributes {
			return errors.New("nothing to migrate: cassandra.hosts is empty (set ARTIFACTSTATE_CASSANDRA_HOSTS or --cassandra-hosts) and temporal.searchAttributes is off")
		}
		logger, err := NewLogger(cfg, "migrate", "json")
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		if cfg.Cassandra.Enabled() {
			if err := readmodel.Migrate(ctx, cfg.Cassandra, logger); err != nil {
				return err
			}
		}
		if cfg.Temporal.SearchAttributes {
			return registerSearchAttributes(ctx, cfg, logger)
		}
		return nil
	}
	return cmd
}

// registerSearchAttributes registers the entities' search attributes,
// retrying while Temporal is not reachable yet (until ctx ends).
func registerSearchAttributes(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	c, err := temporalclient.New(cfg.Temporal, logger, temporalclient.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		added, err := searchattr.Register(ctx, c, cfg.Temporal.Namespace)
		if err == nil {
			logger.Info("Search attributes registered", "namespace", cfg.Temporal.Namespace, "added", added)
			return nil
		}
		logger.Warn("Cannot register the search attributes yet; retrying", "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("register the search attributes: %w", err)
		case <-time.After(2 * time.Second):
		}
	}
}
