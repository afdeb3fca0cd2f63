package cli

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/errgroup"

	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

func newReplayCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Pre-deploy check: replay live entity histories (or history files) against this binary's workflow code",
		Long: `Fetches the histories of running entity workflows from Temporal (all of them, a
deterministic sample, those a visibility query selects, or --workflow-id) and
replays each against the workflow code of this binary, several at once. A
non-zero exit means deploying this binary would break those entities: run it
before every deploy (the README's release runbook).

  artifactstate replay --temporal-address temporal:7233 --namespace prod
  artifactstate replay --sample 0.01 --limit 5000                  # 1 % of the entities, newest runs first
  artifactstate replay --query "TemporalWorkerDeploymentVersion IS NULL"   # the unversioned runs a new build takes over
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
	query := cmd.Flags().String("query", "", "only the running entities this visibility query also selects (ANDed)")
	sample := cmd.Flags().Float64("sample", 1, "replay this fraction of the entities, chosen by a hash of the workflow ID (the same ones each time)")
	parallel := cmd.Flags().Int("parallel", 4, "histories fetched and replayed at once")
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
		if *sample <= 0 || *sample > 1 {
			return fmt.Errorf("--sample must be in (0, 1], got %v", *sample)
		}
		ids := []string{*workflowID}
		if *workflowID == "" {
			sel := selection{Namespace: cfg.Temporal.Namespace, Query: *query, Sample: *sample, Limit: *limit}
			if ids, err = openEntities(ctx, c.ListWorkflow, sel); err != nil {
				return err
			}
		}
		var mu sync.Mutex
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(1, *parallel))
		for _, id := range ids {
			g.Go(func() error {
				h := &history.History{}
				it := c.GetWorkflowHistory(gctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
				mu.Lock()
				defer mu.Unlock()
				check(id, h)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		return summary(cmd, failed, total)
	}
	return cmd
}

type listFunc func(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)

// selection says which running entities to replay.
type selection struct {
	Namespace string
	// Query is ANDed with the running entities' query ("": all).
	Query string
	// Sample is the fraction kept, by a hash of the workflow ID.
	Sample float64
	// Limit stops the listing after this many (0: no limit).
	Limit int
}

// query is the visibility query of the selection.
func (s selection) query() string {
	q := fmt.Sprintf("WorkflowType = %q AND ExecutionStatus = 'Running'", workflows.EntityWorkflowName)
	if s.Query != "" {
		q += " AND (" + s.Query + ")"
	}
	return q
}

// sampled reports whether the workflow ID falls in the sample: the same IDs
// for the same fraction on every run, spread over users and artifacts.
func (s selection) sampled(workflowID string) bool {
	if s.Sample >= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(workflowID))
	return float64(h.Sum64()%1_000_000) < s.Sample*1_000_000
}

// openEntities lists the running entity workflows the selection selects.
func openEntities(ctx context.Context, list listFunc, sel selection) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := list(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: sel.Namespace, Query: sel.query(), NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list running entities: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			if !sel.sampled(id) {
				continue
			}
			ids = append(ids, id)
			if sel.Limit > 0 && len(ids) >= sel.Limit {
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
