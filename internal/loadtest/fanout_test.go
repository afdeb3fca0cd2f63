package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/entities"
)

// fanOutScenario publishes artifacts to followers new to m.
func fanOutScenario(c *Client, followers, batch int, artifacts ...int64) *FanOut {
	return &FanOut{Client: c, Followers: FollowerIDs(DefaultNames(), "t9", followers), Artifacts: artifacts, Batch: batch, KeyPrefix: "lt-t9"}
}

func requireFanOutOK(t *testing.T, c *Client, m *memoryEntities, followers, batch int) {
	t.Helper()
	s := fanOutScenario(c, followers, batch, 3, 4)
	rep := s.Run(context.Background(), &Runner{}, 3)
	calls := 2 * ((followers + batch - 1) / batch)
	require.Equal(t, calls, s.Calls())
	require.Equal(t, 2*followers, s.PairsAnswered())
	require.Equal(t, &FanOutReport{Followers: followers, Artifacts: 2, Batch: batch, Calls: calls, Pairs: 2 * followers, Applied: 2 * followers,
		PairsPerSecond: rep.FanOut.PairsPerSecond, PerPairLatency: rep.FanOut.PerPairLatency}, rep.FanOut)
	require.Positive(t, rep.FanOut.PairsPerSecond)
	require.Positive(t, rep.FanOut.PerPairLatency.P99)
	require.Less(t, rep.FanOut.PerPairLatency.Max, rep.Call(CallFanOut).Latency.Max, "a pair's share of its call")
	require.Equal(t, calls, rep.Call(CallFanOut).OK)
	require.Empty(t, rep.Failures())
	require.Equal(t, 2*followers, m.Len())

	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, 2*followers, v.Pairs, "every follower's pair is checked")
	require.Equal(t, 2*followers, v.AcknowledgedWrites)

	// Again with the same keys: every item answers its first result, and
	// nothing is applied twice.
	again := fanOutScenario(c, followers, batch, 3, 4).Run(context.Background(), &Runner{}, 3)
	require.Equal(t, 2*followers, again.FanOut.Applied)
	for _, u := range FollowerIDs(DefaultNames(), "t9", followers) {
		st, err := m.State(context.Background(), Pair{UserID: u, ArtifactID: 4})
		require.NoError(t, err)
		require.Equal(t, uint64(1), st.Version, u)
	}
}

func TestFanOutScenarioAgainstTheRouter(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	c := newClient(t, startAPI(t, m, nil), 4)
	requireFanOutOK(t, c, m, 250, 100)
}

func TestFanOutScenarioOverGRPC(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	c := newGRPCClient(t, startGRPC(t, m, nil))
	requireFanOutOK(t, c, m, 120, 50)
}

// Failed items are counted by reason and fail the run; the verification
// checks only the items applied; a call refused as a whole counts its
// users.
func TestFanOutScenarioReportsFailures(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	followers := FollowerIDs(DefaultNames(), "t9", 10)
	m.writeErr = map[Pair]error{
		{UserID: followers[2], ArtifactID: 1}: fmt.Errorf("%w: overloaded", entities.ErrUnavailable),
		{UserID: followers[7], ArtifactID: 1}: entities.ErrIdempotencyKeyReused,
	}
	c := newClient(t, startAPI(t, m, nil), 4)
	rep := fanOutScenario(c, 10, 4, 1).Run(context.Background(), &Runner{}, 2)
	f := rep.FanOut
	require.Equal(t, 8, f.Applied)
	require.Equal(t, 2, f.FailedItems)
	require.Equal(t, map[string]int{"503 unavailable": 1, "422 idempotency_key_reused": 1}, f.FailedItemsByReason)
	require.ElementsMatch(t, []string{
		fmt.Sprintf("(%q, 1): 503 unavailable", followers[2]),
		fmt.Sprintf("(%q, 1): 422 idempotency_key_reused", followers[7]),
	}, f.Examples)
	require.Zero(t, rep.Total.Errors, "the calls succeeded")
	require.Equal(t, []string{"a follower's pair was not applied (a failed item or call)"}, rep.Failures())
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status)
	require.Equal(t, 8, v.Pairs)
	require.Equal(t, 1, v.UnknownWrites, "the 503; the 422 was rejected")

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "fan-out: FAILED\n  3 calls of up to 4 users (10 followers x 1 artifacts = 10 pairs): 8 applied, 2 failed, 0 in 0 failed calls; ")
	require.Contains(t, text.String(), "  failed items by reason: 422 idempotency_key_reused: 1, 503 unavailable: 1\n")
	var page bytes.Buffer
	require.NoError(t, rep.WriteHTML(&page))
	wellFormed(t, page.String())
	require.Contains(t, page.String(), "fan-out: FAILED")
	roundTrips(t, rep)

	// More users than the service takes in one call: 400, the whole call.
	big := fanOutScenario(c, 1001, 1001, 2).Run(context.Background(), &Runner{}, 1)
	require.Equal(t, 1, big.FanOut.CallsFailed)
	require.Equal(t, 1001, big.FanOut.PairsInFailedCalls)
	require.Zero(t, big.FanOut.NotSent())
	require.Equal(t, map[int]int{400: 1}, big.Call(CallFanOut).ErrorsByStatus)
	require.True(t, big.Failed())
}

// The HTTP client and the gRPC client read a fan-out's failed items alike.
func TestFanOutItemsOverBothProtocols(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	m.writeErr = map[Pair]error{{UserID: "b", ArtifactID: 5}: fmt.Errorf("%w: slow", entities.ErrTimeout)}
	for _, c := range []*Client{newClient(t, startAPI(t, m, nil), 1), newGRPCClient(t, startGRPC(t, m, nil))} {
		items, res := c.FanOut(context.Background(), FanOutRequest{ArtifactID: 5, Kind: "setArtifactReadByUser", UserIDs: []string{"a", "b"}})
		require.NoError(t, res.Err, c.Protocol())
		require.Equal(t, []FanOutItem{{UserID: "a", State: PairState{ArtifactRead: true}}, {UserID: "b", Status: 504, Code: "timeout"}}, items, c.Protocol())
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	require.Equal(t, "[>         ]   0%", ProgressBar(0, 100, 10))
	require.Equal(t, "[====>     ]  45%", ProgressBar(45, 100, 10))
	require.Equal(t, "[==========] 100%", ProgressBar(100, 100, 10))
	require.Equal(t, "[==========] 100%", ProgressBar(5, 0, 10), "nothing to do is done")
}
