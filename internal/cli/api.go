package cli

import (
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/pairs"
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
	s := NewSettings(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.CassandraFlags(cmd.Flags())
	s.StringFlag(cmd.Flags(), "listen", "API listen address, e.g. :8082", func(c *config.Config, v string) { c.API.ListenAddress = v })
	s.StringFlag(cmd.Flags(), "grpc-listen", "gRPC API listen address, e.g. :8083 (empty: no gRPC API)", func(c *config.Config, v string) { c.GRPC.ListenAddress = v })
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.Load(cmd.Flags())
		if err != nil {
			return err
		}
		logger, err := NewLogger(cfg, "api", "json")
		if err != nil {
			return err
		}
		return RunApp(cfg, logger, apiModules...)
	}
	return cmd
}

// apiModules are the api role's.
var apiModules = []fx.Option{temporalclient.Module, readmodel.Module, entities.Module, pairs.Module,
	auth.Module, apiguard.Module, server.Module, grpcapi.Module, ops.Module}
