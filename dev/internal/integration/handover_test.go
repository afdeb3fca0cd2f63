package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Writers racing an entity's continue-as-new (its history budget, and
// `release upgrade` signalling it): the task that closes the run is refused
// while a new signal waits (the server answers the worker
// UnhandledCommand), and the updates that task carried fail with
// WorkflowNotReady ("unexpected workflow task failure") although none was
// applied. The API sends them again with the same update ID within the
// deadline, so every write succeeds, once. (Before, each such write
// answered 503 entity_unavailable: the fault test's versioned rollout, which
// makes every entity continue as new under load, saw it.)
func TestWritesRacingAContinueAsNewAllSucceed(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.Worker.MaxHistoryEvents = 100 // a hand-over every few writes
	c := testenv.Client(t, cfg, "handover")
	testenv.StartWorker(t, c, cfg, nil)
	key := entityid.Key{UserID: "handover", ArtifactID: 1}
	const writers, each = 8, 40
	var failed atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() { // release upgrade, again and again
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_ = c.SignalWorkflow(context.Background(), key.WorkflowID(), "", workflows.UpgradeSignalName, workflows.UpgradeRequest{Reason: "test"})
		}
	}()
	for w := range writers {
		e := entities.New(testenv.Client(t, cfg, "writer"), testenv.EntitiesOptions(cfg), testenv.Logger())
		wg.Go(func() {
			for i := range each {
				kind := []workflows.CommandKind{workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}[(w+i)%2]
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				if _, err := e.Apply(ctx, key, entities.Command{Kind: kind}); err != nil {
					failed.Add(1)
					t.Errorf("writer %d, write %d: %v", w, i, err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(done)
	st, err := entities.New(c, testenv.EntitiesOptions(cfg), testenv.Logger()).State(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Run < 3 {
		t.Errorf("only %d runs: the writes did not race continue-as-new", st.Run)
	}
	if want := uint64(writers*each) - uint64(failed.Load()); st.CommandsApplied != want {
		t.Errorf("%d commands applied, want %d: a retried write applied twice or not at all", st.CommandsApplied, want)
	}
}
