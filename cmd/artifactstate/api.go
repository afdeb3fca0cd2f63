package main

import (
	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/server"
)

func newAPICommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the REST and gRPC APIs against an external Temporal cluster",
		Args:  cobra.NoArgs,
	}
	s := newSettings(cmd.Flags())
	s.temporalFlags(cmd.Flags())
	s.logFlags(cmd.Flags())
	s.cassandraFlags(cmd.Flags())
	s.stringFlag(cmd.Flags(), "listen", "API listen address, e.g. :8082", func(c *config.Config, v string) { c.API.ListenAddress = v })
	s.stringFlag(cmd.Flags(), "grpc-listen", "gRPC API listen address, e.g. :8083 (empty: no gRPC API)", func(c *config.Config, v string) { c.GRPC.ListenAddress = v })
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.load(cmd.Flags())
		if err != nil {
			return err
		}
		logger, err := newLogger(cfg, "api", "json")
		if err != nil {
			return err
		}
		return runApp(cfg, logger, temporalclient.Module, readmodel.Module, entities.Module,
			auth.Module, apiguard.Module, server.Module, grpcapi.Module, ops.Module)
	}
	return cmd
}
