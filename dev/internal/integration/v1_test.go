package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// v1Answer is the part of a v1 command's answer the tests read.
type v1Answer struct {
	Code    string   `json:"code"`
	Current *v1State `json:"current"`
	v1State
}

type v1State struct {
	ArtifactInUserFeed bool  `json:"artifactInUserFeed"`
	Version            int64 `json:"version"`
}

// command POSTs a v1 command with the given headers; safe in any goroutine.
func (s *stack) command(user string, artifact int64, kind string, header map[string]string) (int, v1Answer, error) {
	url := fmt.Sprintf("%s/v1/users/%s/artifacts/%d/commands", s.api.URL, user, artifact)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(`{"kind":"`+kind+`"}`))
	if err != nil {
		return 0, v1Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, v1Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, v1Answer{}, err
	}
	var a v1Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("%d %s: %w", resp.StatusCode, body, err)
	}
	return resp.StatusCode, a, nil
}

// Two HTTP clients race conditional writes on one pair, each with the
// version both read, against the real stack: in every round exactly one
// wins (200, the next version) and the other gets 412 with the state the
// winner left.
func TestConditionalWriteRaceOverHTTP(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	kinds := []string{"setArtifactAddedToUserFeed", "setArtifactRemovedFromUserFeed"}
	version := int64(0)
	for round := range 6 {
		type result struct {
			status int
			answer v1Answer
			err    error
		}
		var wg sync.WaitGroup
		results := make([]result, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, a, err := s.command("race", 1, kinds[round%2], map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version)})
				results[i] = result{st, a, err}
			}()
		}
		wg.Wait()
		for i, r := range results {
			require.NoError(t, r.err, "round %d, client %d", round, i)
		}
		winner := -1
		for i, r := range results {
			if r.status == http.StatusOK {
				require.Equal(t, -1, winner, "round %d: both clients won at version %d", round, version)
				winner = i
			}
		}
		require.NotEqual(t, -1, winner, "round %d: neither won: %+v", round, results)
		loser := results[1-winner]
		require.Equal(t, http.StatusPreconditionFailed, loser.status, "round %d", round)
		require.Equal(t, "precondition_failed", loser.answer.Code)
		won := results[winner].answer.v1State
		require.Equal(t, version+1, won.Version, "round %d: the winner's answer is the next version", round)
		require.Equal(t, round%2 == 0, won.ArtifactInUserFeed)
		require.NotNil(t, loser.answer.Current, "round %d: the loser gets the current state", round)
		require.Equal(t, won, *loser.answer.Current, "round %d: the loser sees what the winner left", round)
		version = won.Version
	}
}

// A write retried with its Idempotency-Key after another client's write
// applies once and answers its first result, not a second application.
func TestIdempotentRetryOverHTTP(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	key := map[string]string{"Idempotency-Key": "retry-1"}
	st, first, err := s.command("retry", 1, "setArtifactAddedToUserFeed", key)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	st, _, err = s.command("retry", 1, "setArtifactRemovedFromUserFeed", nil) // another client
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	st, again, err := s.command("retry", 1, "setArtifactAddedToUserFeed", key) // the retry
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, first.v1State, again.v1State, "the retry answers the first result")
	require.Contains(t, s.get(t, "/artifactState/isArtifactInUserFeed", 1, "retry").body, `"answer":false`,
		"the retry did not put the item back after the other client's remove")
	st, reused, err := s.command("retry", 1, "setArtifactReadByUser", key)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, st)
	require.Equal(t, "idempotency_key_reused", reused.Code)
}
