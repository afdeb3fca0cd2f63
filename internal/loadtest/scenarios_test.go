package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/linearizability"
)

// wellFormed parses page as strict XML and counts its elements.
func wellFormed(t *testing.T, page string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = true
	elements := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return elements
		}
		require.NoError(t, err, "the page is well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			elements[se.Name.Local]++
		}
	}
}

// roundTrips checks that rep survives JSON.
func roundTrips(t *testing.T, rep *Report) {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, rep.WriteJSON(&b))
	var back Report
	require.NoError(t, json.Unmarshal(b.Bytes(), &back))
	require.Equal(t, *rep, back)
}

func TestNewPairIDs(t *testing.T) {
	t.Parallel()
	require.Equal(t, []Pair{{UserID: "a-t1", ArtifactID: 0}, {UserID: "b-t1", ArtifactID: 1}, {UserID: "a-t1", ArtifactID: 2}},
		NewPairIDs([]string{"a", "b"}, "t1", 3))
	require.Equal(t, "t0", RunTag(0))
	require.Equal(t, "tz", RunTag(35))
	require.Equal(t, RunTag(7), RunTag(7+1<<40), "tags are short")
	for _, p := range NewPairIDs(DefaultNames(), RunTag(1<<40-1), 400) {
		require.NoError(t, entityid.ValidateUserID(p.UserID))
	}
}

func TestNewPairsAgainstTheRouter(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 8)
	s := &NewPairs{Client: c, Pairs: NewPairIDs(DefaultNames(), "t1", 50)}
	rep := s.Run(context.Background(), &Runner{}, 8)
	require.Equal(t, &ReadAfterWrite{Pairs: 50, Written: 50, ReadsOK: 50}, rep.ReadAfterWrite)
	require.Empty(t, rep.Failures())
	require.Equal(t, []string{CallAddToFeed, CallIsInFeed}, []string{rep.Calls[0].Call, rep.Calls[1].Call})
	for _, call := range rep.Calls {
		require.Equal(t, 50, call.OK, call.Call)
		require.Positive(t, call.Latency.P99, call.Call)
	}
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status)
	require.Equal(t, 50, v.Pairs)

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "read after write on new pairs: OK\n  50 pairs: 50 writes acknowledged, 0 not; 50 reads answered true, 0 false, 0 failed\n")
	roundTrips(t, rep)
}

func TestNewPairsReportsFailedAndWrongReads(t *testing.T) {
	t.Parallel()
	pairs := NewPairIDs([]string{"Smith"}, "t2", 10)
	m := newMemoryEntities()
	m.writeErr = map[Pair]error{pairs[7]: fmt.Errorf("%w: overloaded", entities.ErrUnavailable)}
	m.readErr = map[Pair]error{pairs[5]: fmt.Errorf("%w: no answer", entities.ErrTimeout)}
	m.notInFeed = map[Pair]bool{pairs[3]: true}
	srv := startAPI(t, m, nil)
	c := newClient(t, srv, 4)
	rep := (&NewPairs{Client: c, Pairs: pairs}).Run(context.Background(), &Runner{}, 4)
	raw := rep.ReadAfterWrite
	require.Equal(t, 10, raw.Pairs)
	require.Equal(t, 9, raw.Written)
	require.Equal(t, 1, raw.WritesFailed)
	require.Equal(t, 7, raw.ReadsOK)
	require.Equal(t, 1, raw.WrongAnswers)
	require.Equal(t, map[int]int{504: 1}, raw.FailedReadsByStatus)
	require.ElementsMatch(t, []string{
		`("Smith-t2", 7): write: 503 unavailable`,
		`("Smith-t2", 5): read: 504 timeout`,
		`("Smith-t2", 3): read answered false`,
	}, raw.Examples)
	require.True(t, rep.Failed())
	require.Contains(t, rep.Failures(), "a new pair was not written, or not read back as written")
	require.Equal(t, 9, rep.Call(CallIsInFeed).Count, "no read after a failed write")
	require.Equal(t, map[int]int{200: 1, 504: 1}, rep.Call(CallIsInFeed).ErrorsByStatus, "the wrong answer is a 200 with the wrong body")

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "read after write on new pairs: FAILED\n  10 pairs: 9 writes acknowledged, 1 not; 7 reads answered true, 1 false, 1 failed (504: 1)\n")
	var page bytes.Buffer
	require.NoError(t, rep.WriteHTML(&page))
	wellFormed(t, page.String())
	require.Contains(t, page.String(), "read after write on new pairs: FAILED")
	roundTrips(t, rep)
}

func TestHotPairAgainstTheRouterIsLinearizable(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 8)
	h := &HotPair{Client: c, Pair: Pair{UserID: "Smith-t3", ArtifactID: 0}, Readers: 6, Writers: 2, Recorder: linearizability.NewRecorder()}
	rep, err := h.Run(context.Background(), &Runner{}, 300*time.Millisecond, linearizability.Options{Visualization: filepath.Join(t.TempDir(), "lin.html")})
	require.NoError(t, err)
	rep.ZeroErrors = true
	require.Empty(t, rep.Failures())
	for _, call := range []string{CallGetAllStates, CallIsInFeed, CallIsRead, CallAddToFeed, CallRemoveFromFeed, CallSetRead} {
		require.Positive(t, rep.Call(call).OK, call)
	}
	lin := rep.Linearizability
	require.True(t, lin.OK())
	require.Len(t, lin.Pairs, 1)
	require.Equal(t, rep.Total.Count, lin.Pairs[0].Operations, "every call is in the history")
	require.Empty(t, lin.Visualization)
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), fmt.Sprintf("linearizability: 1 pairs, %d operations (0 writes of unknown outcome): linearizable\n", rep.Total.Count))
	roundTrips(t, rep)
}

func TestHotPairUnknownWritesAndFailedReads(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	m.FailWith(fmt.Errorf("%w: overloaded", entities.ErrUnavailable))
	srv := startAPI(t, m, nil)
	c := newClient(t, srv, 4)
	h := &HotPair{Client: c, Pair: Pair{UserID: "Smith-t4", ArtifactID: 0}, Readers: 2, Writers: 2, Recorder: linearizability.NewRecorder()}
	rep, err := h.Run(context.Background(), &Runner{}, 100*time.Millisecond, linearizability.Options{})
	require.NoError(t, err)
	require.Positive(t, rep.Total.Errors)
	require.Equal(t, rep.Total.Errors, rep.Total.Count, "every call answered 503")
	lin := rep.Linearizability
	require.True(t, lin.OK(), "503s may or may not have happened: nothing contradicts")
	writes := rep.Call(CallAddToFeed).Count + rep.Call(CallRemoveFromFeed).Count + rep.Call(CallSetRead).Count
	require.Equal(t, writes, lin.Pairs[0].UnknownWrites, "every write is of unknown outcome")
	require.Equal(t, writes, lin.Pairs[0].Operations, "failed reads told nothing and are left out")
	require.Equal(t, rep.Total.Count-writes, h.Recorder.Dropped())
	require.False(t, rep.Failed(), "503s are retriable")
	rep.ZeroErrors = true
	require.Equal(t, []string{fmt.Sprintf("%d calls failed (this scenario expects none)", rep.Total.Errors)}, rep.Failures())
}

func TestHotPairCatchesAStaleRead(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	m.forgetRead = true // reads never see setArtifactReadByUser
	srv := startAPI(t, m, nil)
	c := newClient(t, srv, 1)
	rec := linearizability.NewRecorder()
	p := Pair{UserID: "Smith-t5", ArtifactID: 0}
	for _, kind := range []linearizability.Kind{linearizability.AddToFeed, linearizability.SetRead, linearizability.GetAllStates} {
		require.NoError(t, c.RecordedOp(rec, 0, p, kind).Do(context.Background()).Err, kind)
	}
	path := filepath.Join(t.TempDir(), "lin.html")
	lin, err := linearizability.Check(rec.History(), linearizability.Options{Visualization: path})
	require.NoError(t, err)
	require.False(t, lin.OK())
	require.Equal(t, linearizability.NotLinearizable, lin.Pairs[0].Verdict)
	page, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(page), "getAllStates → read=false inFeed=true")

	rep := &Report{Linearizability: lin}
	require.Equal(t, []string{"the history is not linearizable (or its check timed out)"}, rep.Failures())
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), `linearizability: 1 pairs, 3 operations (0 writes of unknown outcome): NOT LINEARIZABLE: ("Smith-t5", 0) not linearizable; see `+path)
}

func TestClosedModelOnAListOfPairs(t *testing.T) {
	t.Parallel()
	require.Equal(t, []Pair{{UserID: "a", ArtifactID: 0}, {UserID: "b", ArtifactID: 0}, {UserID: "a", ArtifactID: 1}, {UserID: "b", ArtifactID: 1}, {UserID: "a", ArtifactID: 2}},
		PairList([]string{"a", "b"}, 5))
	m := newMemoryEntities()
	srv := startAPI(t, m, nil)
	c := newClient(t, srv, 4)
	pairs := PairList([]string{"a", "b", "c"}, 7)
	mixer := NewMixerOnPairs(c, Mix{Write: 50, Strong: 50}, pairs, 4, 3)
	rep := RunClosed(context.Background(), 4, 200*time.Millisecond, mixer.Next)
	require.Zero(t, rep.Total.Errors)
	require.Positive(t, rep.Call(CallGetAllStates).Count+rep.Call(CallGetAllStatesGet).Count)
	require.Zero(t, rep.Call(CallEventual).Count)
	for _, e := range c.Ledger.Expectations(false) {
		require.Contains(t, pairs, e.Pair)
	}
	require.LessOrEqual(t, m.Len(), 7)
}
