package cli

import (
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/reconcile"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/worker"
)

func newWorkerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the entity workflows against an external Temporal cluster",
		Args:  cobra.NoArgs,
	}
	s := NewSettings(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.CassandraFlags(cmd.Flags())
	s.StringFlag(cmd.Flags(), "identity", "worker identity shown in workflow histories (default pid@host)",
		func(c *config.Config, v string) { c.Worker.Identity = v })
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.Load(cmd.Flags())
		if err != nil {
			return err
		}
		logger, err := NewLogger(cfg, "worker", "json")
		if err != nil {
			return err
		}
		return RunApp(cfg, logger, workerModules...)
	}
	return cmd
}

// workerModules are the worker role's.
var workerModules = []fx.Option{temporalclient.Module, readmodel.Module, worker.Module, reconcile.Module, auth.Module, ops.Module}
