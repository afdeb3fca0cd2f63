package integration

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// The original Gatling scenario, small, against the real stack: no call
// fails, and every acknowledged write is in the final state, through the
// API and in the read model.
func TestLoadtestGatlingScenario(t *testing.T) {
	t.Parallel()
	// This checks correctness, not latency: on two cores beside the other
	// tests a call may queue for seconds.
	s := startStackWithReadModel(t, testenv.CassandraHosts(t), func(c *config.Config) { c.API.RequestTimeout = 30 * time.Second })
	client, err := loadtest.NewClient(s.api.URL, loadtest.ClientOptions{MaxConns: 64, Timeout: time.Minute})
	require.NoError(t, err)
	defer client.Close()
	client.Ledger = loadtest.NewLedger()
	ctx := context.Background()

	g := &loadtest.Gatling{Client: client, Rand: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	rep := loadtest.RunRamp(ctx, 40, 5*time.Second, g.User)
	ended := time.Now()
	rep.Scenario, rep.Target = "gatling", client.Target()
	rep.Verification = loadtest.Verify(ctx, client, client.Ledger, loadtest.VerifyOptions{
		AssumeFresh: true, ConvergeTimeout: 20 * time.Second, PollInterval: 100 * time.Millisecond, LoadEnded: ended})
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	t.Log("\n" + text.String())

	require.Zero(t, rep.Total.Errors, "%v", rep.Total.ErrorsByMessage)
	require.Equal(t, 240, rep.Total.Count)
	for _, call := range rep.Calls {
		require.Equal(t, 40, call.OK, call.Call)
	}
	v := rep.Verification
	require.Equal(t, 120, v.AcknowledgedWrites)
	require.Zero(t, v.UnknownWrites)
	require.Equal(t, loadtest.CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, v.Pairs, v.API.Checked)
	require.Equal(t, loadtest.CheckOK, v.ReadModel.Status, "%+v", v.ReadModel)
	require.Equal(t, v.Pairs, v.ReadModel.Checked)
	require.False(t, rep.Failed())
	t.Logf("projection lag: %s", s.lags.summary())
}

// The new-pairs and hot-pair scenarios, small, against the real stack:
// every read right after an acknowledged write reflects it, and the hot
// pair's history is linearizable.
func TestLoadtestNewPairsAndHotPair(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) { c.API.RequestTimeout = 30 * time.Second })
	client, err := loadtest.NewClient(s.api.URL, loadtest.ClientOptions{MaxConns: 16, Timeout: time.Minute})
	require.NoError(t, err)
	defer client.Close()
	ctx := context.Background()
	tag := loadtest.RunTag(uint64(time.Now().UnixNano()))

	np := &loadtest.NewPairs{Client: client, Pairs: loadtest.NewPairIDs(loadtest.DefaultNames(), tag, 40)}
	rep := np.Run(ctx, &loadtest.Runner{}, 8)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	t.Log("\n" + text.String())
	raw := rep.ReadAfterWrite
	require.Zero(t, raw.WrongAnswers, "a read after an acknowledged write did not reflect it")
	require.Zero(t, rep.Total.NonRetriable, "%v", rep.Total.ErrorsByMessage)
	require.Equal(t, 40, raw.Written+raw.WritesFailed)

	hot := &loadtest.HotPair{Client: client, Pair: loadtest.Pair{UserID: "hot-" + tag, ArtifactID: 1},
		Readers: 4, Writers: 2, Recorder: linearizability.NewRecorder()}
	visualization := filepath.Join(t.TempDir(), "linearizability.html")
	rep, err = hot.Run(ctx, &loadtest.Runner{}, 3*time.Second, linearizability.Options{Timeout: time.Minute, Visualization: visualization})
	require.NoError(t, err)
	text.Reset()
	require.NoError(t, rep.WriteText(&text))
	t.Log("\n" + text.String())
	require.Zero(t, rep.Total.NonRetriable, "%v", rep.Total.ErrorsByMessage)
	require.Positive(t, rep.Total.OK)
	require.True(t, rep.Linearizability.OK(), "%s", rep.Linearizability)
}
