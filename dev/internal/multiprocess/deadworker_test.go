package multiprocess

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// An entity's later workflow tasks and queries go to the worker that has it
// cached. When that worker dies (SIGKILL: it says no goodbye to Temporal),
// reads and writes of its entities must still answer within the request
// timeout: the sticky schedule-to-start timeout (2 s) sends them to another
// worker well before the 5 s request timeout.
func TestEntitiesOfADeadWorkerAnswerWithinTheRequestTimeout(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	f := startFleet(t, tt, fleetOptions{Workers: 2, APIs: 1, Identity: "dead",
		Env: []string{"ARTIFACTSTATE_API_REQUEST_TIMEOUT=5s"}})
	workers, api := f.workers, f.apis[0]
	c := testenv.Client(t, tt.Config(), "dead-worker-test")

	// Write pairs until worker-0 holds some of them (the worker that ran an
	// entity's last workflow task has it cached).
	var cached []int64
	for i := int64(0); len(cached) < 5; i++ {
		if i == 200 {
			t.Fatalf("worker-0 ran none of 200 new entities")
		}
		if r, err := call("POST", api.url+"/artifactState/setArtifactAddedToUserFeed", pair(i, "dead")); err != nil || r.body != `{"success":true}` {
			t.Fatalf("write %d: %d %q %v", i, r.status, r.body, err)
		}
		if lastWorker(t, c, entityid.Key{UserID: "dead", ArtifactID: i}) == "dead-0" {
			cached = append(cached, i)
		}
	}
	workers[0].kill(t)

	for _, id := range cached {
		started := time.Now()
		r, err := call("GET", api.url+"/artifactState/getAllStates"+query(id, "dead"), "")
		want := fmt.Sprintf(`{"artifactId":%d,"artifactInUserFeed":true,"artifactRead":false,"userId":"dead"}`, id)
		if err != nil || r.body != want {
			t.Fatalf("read of pair %d cached on the dead worker: %d %q %v after %v, want %s", id, r.status, r.body, err, time.Since(started), want)
		}
		t.Logf("pair %d read in %v", id, time.Since(started).Round(time.Millisecond))
		started = time.Now()
		if r, err := call("POST", api.url+"/artifactState/setArtifactReadByUser", pair(id, "dead")); err != nil || r.body != `{"success":true}` {
			t.Fatalf("write of pair %d cached on the dead worker: %d %q %v after %v", id, r.status, r.body, err, time.Since(started))
		}
	}
}

// lastWorker is the identity of the worker that completed the entity's last
// workflow task.
func lastWorker(t *testing.T, c client.Client, k entityid.Key) string {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), k.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	last := ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if done := ev.GetWorkflowTaskCompletedEventAttributes(); done != nil {
			last = done.GetIdentity()
		}
	}
	return last
}
