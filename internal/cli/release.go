package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
)

func newReleaseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Worker Versioning: see, promote, ramp and drain the builds of the entity workers",
		Long: `Every entity run is pinned to the build of the worker that started it
(worker.versioning). A new build takes new runs once it is current (or
ramping); an entity moves to it at its next continue-as-new: at once if it
gets a command, and for an idle one when 'release upgrade' asks it to.

  artifactstate release status                 builds, routing, entities per build
  artifactstate release promote BUILD_ID       make BUILD_ID current ("unversioned": the unversioned workers)
  artifactstate release ramp BUILD_ID PERCENT  send PERCENT of the new runs to BUILD_ID (0: stop)
  artifactstate release upgrade --rate 50      move idle entities pinned to other builds to the current one

The README's release runbook says when to use which.`,
	}
	cmd.AddCommand(newReleaseStatusCommand(), newReleasePromoteCommand(), newReleaseRampCommand(), newReleaseUpgradeCommand())
	return cmd
}

// releaseSettings are the flags every release subcommand takes.
type releaseSettings struct {
	*Settings
	timeout *time.Duration
}

func newReleaseSettings(cmd *cobra.Command, timeout time.Duration) releaseSettings {
	s := NewSettings(cmd.Flags())
	s.LogFlags(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	s.StringFlag(cmd.Flags(), "deployment", "Worker Deployment name (worker.versioning.deploymentName)",
		func(c *config.Config, v string) { c.Worker.Versioning.DeploymentName = v })
	return releaseSettings{Settings: s, timeout: cmd.Flags().Duration("timeout", timeout, "give up after this long")}
}

// run loads the configuration, connects, and calls f with the deployment.
func (s releaseSettings) run(cmd *cobra.Command, f func(context.Context, config.Config, client.Client, *release.Deployment) error) error {
	cfg, err := s.Load(cmd.Flags())
	if err != nil {
		return err
	}
	logger, err := NewLogger(cfg, "release", "text")
	if err != nil {
		return err
	}
	c, err := temporalclient.New(cfg.Temporal, logger, temporalclient.Options{Identity: "artifactstate-release"})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), *s.timeout)
	defer cancel()
	return f(ctx, cfg, c, release.New(c, cfg.Worker.Versioning.DeploymentName, logger))
}

func newReleaseStatusCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Builds of the deployment, where new runs go, and entities per build", Args: cobra.NoArgs}
	s := newReleaseSettings(cmd, time.Minute)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return s.run(cmd, func(ctx context.Context, cfg config.Config, c client.Client, d *release.Deployment) error {
			routing, versions, ok, err := d.Describe(ctx)
			if err != nil {
				return err
			}
			name := cfg.Worker.Versioning.DeploymentName
			if !ok {
				cmd.Printf("Worker deployment %s: no versioned worker has polled yet\n", name)
				return nil
			}
			current := routing.Current
			if current == "" {
				current = "(unversioned workers)"
			}
			cmd.Printf("Worker deployment %s\n  current: %s\n", name, current)
			if routing.RampingPercent > 0 {
				cmd.Printf("  ramping: %s at %.0f%%\n", routing.Ramping, routing.RampingPercent)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BUILD ID\tCREATED\tDRAINAGE\tRUNNING ENTITIES")
			for _, v := range versions {
				n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
					Namespace: cfg.Temporal.Namespace, Query: release.PinnedToQuery(name, v.BuildID)})
				if err != nil {
					return fmt.Errorf("count the entities of build %s: %w", v.BuildID, err)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", v.BuildID, v.Created.Format(time.RFC3339), orDash(v.Drainage), n.GetCount())
			}
			return w.Flush()
		})
	}
	return cmd
}

func newReleasePromoteCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "promote BUILD_ID", Short: `Make BUILD_ID the current version ("unversioned": the unversioned workers)`, Args: cobra.ExactArgs(1)}
	s := newReleaseSettings(cmd, 2*time.Minute)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		build := buildArg(args[0])
		return s.run(cmd, func(ctx context.Context, _ config.Config, _ client.Client, d *release.Deployment) error {
			if err := d.SetCurrent(ctx, build); err != nil {
				return err
			}
			cmd.Printf("current version: %s\n", args[0])
			return nil
		})
	}
	return cmd
}

func newReleaseRampCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ramp BUILD_ID PERCENT", Short: "Send PERCENT of the new runs to BUILD_ID (0 stops ramping)", Args: cobra.ExactArgs(2)}
	s := newReleaseSettings(cmd, 2*time.Minute)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		percent, err := strconv.ParseFloat(args[1], 32)
		if err != nil || percent < 0 || percent > 100 {
			return fmt.Errorf("PERCENT must be a number from 0 to 100, got %q", args[1])
		}
		build := buildArg(args[0])
		if percent == 0 {
			build = ""
		}
		return s.run(cmd, func(ctx context.Context, _ config.Config, _ client.Client, d *release.Deployment) error {
			if err := d.SetRamping(ctx, build, float32(percent)); err != nil {
				return err
			}
			cmd.Printf("ramping: %s at %s%%\n", args[0], args[1])
			return nil
		})
	}
	return cmd
}

func newReleaseUpgradeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Move the entities pinned to other builds onto the current one (each continues as new)",
		Long: `Asks every running entity pinned to a build other than the current version to
continue as new; its new run starts on the current version. Run it after a
new build became current (idle entities never move by themselves), before
stopping the workers of an old build, and after a rollback. It is safe to
stop and start again: entities that moved drop out of the listing, and
--cursor-file resumes after the last finished page.`,
		Args: cobra.NoArgs,
	}
	s := newReleaseSettings(cmd, 24*time.Hour)
	ratePerSecond := cmd.Flags().Float64("rate", 50, "entities moved per second at most")
	cursor := cmd.Flags().String("cursor-file", "", "keep the position here, to resume an interrupted upgrade")
	dryRun := cmd.Flags().Bool("dry-run", false, "count the entities to move; move none")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *ratePerSecond <= 0 {
			return errors.New("--rate must be positive")
		}
		return s.run(cmd, func(ctx context.Context, cfg config.Config, _ client.Client, d *release.Deployment) error {
			p, err := d.Upgrade(ctx, release.UpgradeOptions{
				Namespace: cfg.Temporal.Namespace, Rate: *ratePerSecond, CursorFile: *cursor, DryRun: *dryRun,
				Reason: "artifactstate release upgrade",
				Progress: func(p release.UpgradeProgress) {
					cmd.PrintErrf("moved %d of %d (%d had moved already) in %s\n",
						p.Asked, p.Remaining, p.Gone, p.Elapsed.Round(time.Second))
				},
			})
			if err != nil {
				return err
			}
			if *dryRun {
				cmd.Printf("%d entities are pinned to other builds than the current one\n", p.Remaining)
				return nil
			}
			cmd.Printf("asked %d entities to move (%d had moved already)\n", p.Asked, p.Gone)
			return nil
		})
	}
	return cmd
}

// buildArg reads a BUILD_ID argument: "unversioned" names the unversioned
// workers.
func buildArg(arg string) string {
	if strings.EqualFold(arg, "unversioned") {
		return ""
	}
	return arg
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
