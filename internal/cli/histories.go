package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

func newReplayCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Pre-deploy check: replay live entity histories (or history files) against this binary's workflow code",
		Long: `Fetches the histories of running entity workflows from Temporal (all of them, or
--workflow-id) and replays each against the workflow code of this binary. A
non-zero exit means deploying this binary would break those entities.

  artifactstate replay --temporal-address temporal:7233 --namespace prod
  artifactstate replay --workflow-id 'artifactstate/1/Mike'
  artifactstate replay --file replaytests/testdata/v1-set-read.json.gz

Histories with encrypted payloads replay with the keys of
temporal.encryption.keysFile (ARTIFACTSTATE_TEMPORAL_ENCRYPTION_KEYS_FILE).`,
		Args: cobra.NoArgs,
	}
	s := NewSettings(cmd.Flags())
	s.TemporalFlags(cmd.Flags())
	workflowID := cmd.Flags().String("workflow-id", "", "replay only this entity (its current run)")
	files := cmd.Flags().StringSlice("file", nil, "replay history files instead of live histories")
	limit := cmd.Flags().Int("limit", 0, "stop after this many entities (0: all)")
	saveDir := cmd.Flags().String("save-dir", "", "also save every fetched history here (to grow the corpus)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		cfg, err := s.Load(cmd.Flags())
		if err != nil {
			return err
		}
		// Encrypted histories replay with the keys of temporal.encryption.keysFile.
		codec, err := temporalclient.Codec(cfg.Temporal, logger)
		if err != nil {
			return err
		}
		dc := payloadcrypt.DataConverter(codec)
		replayer, err := histories.NewReplayerWith(dc)
		if err != nil {
			return err
		}
		failed, total := 0, 0
		check := func(name string, h *history.History) {
			total++
			if err := histories.Replay(replayer, logger, h); err != nil {
				failed++
				cmd.PrintErrf("FAIL %s: %v\n", name, err)
				return
			}
			cmd.Printf("ok   %s (%d events)\n", name, len(h.GetEvents()))
		}
		if len(*files) > 0 {
			for _, f := range *files {
				h, err := histories.Load(f)
				if err != nil {
					return err
				}
				check(f, h)
			}
			return summary(cmd, failed, total)
		}
		c, err := temporalclient.New(cfg.Temporal, logger, temporalclient.Options{Identity: "artifactstate-replay", DataConverter: dc})
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		ids := []string{*workflowID}
		if *workflowID == "" {
			if ids, err = openEntities(ctx, c.ListWorkflow, cfg.Temporal.Namespace, *limit); err != nil {
				return err
			}
		}
		for _, id := range ids {
			h := &history.History{}
			it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return fmt.Errorf("history of %s: %w", id, err)
				}
				h.Events = append(h.Events, ev)
			}
			if *saveDir != "" {
				name := filepath.Join(*saveDir, fmt.Sprintf("live-%x.json.gz", id))
				if err := histories.Save(name, h); err != nil {
					return err
				}
			}
			check(id, h)
		}
		return summary(cmd, failed, total)
	}
	return cmd
}

type listFunc func(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)

// openEntities lists the running entity workflows.
func openEntities(ctx context.Context, list listFunc, namespace string, limit int) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := list(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     namespace,
			Query:         fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = 'Running'", workflows.EntityWorkflowName),
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list running entities: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
			if limit > 0 && len(ids) >= limit {
				return ids, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

func summary(cmd *cobra.Command, failed, total int) error {
	cmd.Printf("%d of %d histories replay on this code\n", total-failed, total)
	if failed > 0 {
		return errors.New("some histories do not replay: do not deploy this code (see docs/workflow-versioning.md)")
	}
	return nil
}
