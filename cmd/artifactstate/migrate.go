package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/readmodel"
)

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the Cassandra read model (keyspace and tables), then exit",
		Long: `Creates the keyspace (replication from cassandra.replication) if it is missing and
applies the embedded schema files not yet recorded in its schema_migrations table.
Safe to run again, and concurrently.`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd.Flags())
	s.logFlags(cmd.Flags())
	s.cassandraFlags(cmd.Flags())
	timeout := cmd.Flags().Duration("timeout", 5*time.Minute, "give up after this long")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd.Flags())
		if err != nil {
			return err
		}
		if !cfg.Cassandra.Enabled() {
			return errors.New("cassandra.hosts is empty: nothing to migrate (set ARTIFACTSTATE_CASSANDRA_HOSTS or --cassandra-hosts)")
		}
		logger, err := newLogger(cfg, "migrate", "json")
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		return readmodel.Migrate(ctx, cfg.Cassandra, logger)
	}
	return cmd
}
