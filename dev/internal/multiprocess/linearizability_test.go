package multiprocess

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// Hot pairs written and read through an api process while one of the two
// worker processes is killed (SIGKILL) mid-run: the history stays
// linearizable, and calls that failed while the dead worker's entities moved
// failed as 503/504 (a write of unknown outcome), never as a wrong answer.
func TestHistoryStaysLinearizableWhenAWorkerIsKilled(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	f := startFleet(t, tt, fleetOptions{Workers: 2, APIs: 1, Identity: "lin-worker",
		Env: []string{"ARTIFACTSTATE_API_REQUEST_TIMEOUT=20s"}})
	workers, api := f.workers, f.apis[0]

	client, err := loadtest.NewClient(api.url, loadtest.ClientOptions{MaxConns: 32, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tag := loadtest.RunTag(uint64(time.Now().UnixNano()))
	rec := linearizability.NewRecorder()
	const duration = 16 * time.Second
	reports := make([]*loadtest.Report, 3)
	var wg sync.WaitGroup
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hot := &loadtest.HotPair{Client: client, Pair: loadtest.Pair{UserID: "killed-" + tag, ArtifactID: int64(i)},
				Readers: 4, Writers: 2, Recorder: rec}
			hot.Prepare()
			reports[i] = (&loadtest.Runner{}).Closed(context.Background(), hot.Workers(), duration, hot.Next)
		}()
	}
	select {
	case <-time.After(duration / 3):
	case <-workers[0].done:
		t.Fatalf("worker-0 exited early:\n%s", workers[0].output())
	}
	workers[0].kill(t)
	t.Logf("killed worker-0 at %v", duration/3)
	wg.Wait()

	lin, err := linearizability.Check(rec.History(), linearizability.Options{Timeout: 2 * time.Minute,
		Visualization: filepath.Join(t.TempDir(), "linearizability.html")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("history: %s", lin)
	if !lin.OK() {
		t.Fatalf("not linearizable: %s", lin)
	}
	for i, rep := range reports {
		t.Logf("pair %d: %d calls ok, %d errors %v", i, rep.Total.OK, rep.Total.Errors, rep.Total.ErrorsByMessage)
		if rep.Total.NonRetriable > 0 {
			t.Errorf("pair %d: %d calls failed with something other than 503/504: %v", i, rep.Total.NonRetriable, rep.Total.ErrorsByMessage)
		}
		if rep.Total.OK == 0 {
			t.Errorf("pair %d: no call succeeded", i)
		}
	}
}
