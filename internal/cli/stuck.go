package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/stuck"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
)

func newStuckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stuck",
		Short: "List the entities whose workflow task keeps failing (reads of them answer 503)",
		Long: `Lists the running entity workflows Temporal marked with TemporalReportedProblems:
their workflow task failed or timed out several times in a row, typically
because the deployed code cannot replay them. Their writes are kept; fix the
code (see docs/workflow-versioning.md) or reset them. The same list:
  temporal workflow list --query "` + stuck.Query + `"`,
		Args: cobra.NoArgs,
	}
	s := NewSettings(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	limit := cmd.Flags().Int("limit", 100, "list at most this many")
	timeout := cmd.Flags().Duration("timeout", time.Minute, "give up after this long")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := s.Load(cmd.Flags())
		if err != nil {
			return err
		}
		logger, err := NewLogger(cfg, "stuck", "text")
		if err != nil {
			return err
		}
		c, err := temporalclient.New(cfg.Temporal, logger, temporalclient.Options{})
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
		defer cancel()
		entities, err := stuck.List(ctx, c, cfg.Temporal.Namespace, *limit)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "WORKFLOW ID\tUSER\tARTIFACT\tATTEMPT\tPROBLEMS\tLAST FAILURE")
		for _, e := range entities {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%v\t%s\n", e.WorkflowID, e.Key.UserID, e.Key.ArtifactID, e.Attempt, e.Problems, e.LastFailure)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		cmd.PrintErrf("%d stuck entities\n", len(entities))
		return nil
	}
	return cmd
}
