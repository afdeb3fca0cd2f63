package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

const (
	addKind  = pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED
	readKind = pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER
)

func TestFanOutAnswersEveryItemInOrder(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	c := start(t, e, nil).client
	resp, err := c.FanOut(ctxT(t), &pb.FanOutRequest{ArtifactId: 7, Kind: addKind, UserIds: []string{"Mike", "Anna/B", "山"}})
	require.NoError(t, err)
	require.Equal(t, int64(7), resp.GetArtifactId())
	require.Equal(t, addKind, resp.GetKind())
	require.Equal(t, int32(3), resp.GetApplied())
	require.Zero(t, resp.GetFailed())
	for i, user := range []string{"Mike", "Anna/B", "山"} {
		item := resp.GetResults()[i]
		require.Equal(t, user, item.GetUserId())
		require.Equal(t, int64(7), item.GetArtifactId())
		st := item.GetState()
		require.True(t, st.GetArtifactInUserFeed(), user)
		require.Equal(t, uint64(1), st.GetVersion(), user)
		require.Equal(t, user, st.GetUserId())
		require.Equal(t, pb.Consistency_CONSISTENCY_STRONG, st.GetConsistency())
	}
	require.Equal(t, 3, e.Len())
}

// A retry with the same key answers each item's first result; the key with
// another command answers each item IDEMPOTENCY_KEY_REUSED; a pair's
// failure is that item's Error with the status it would have got alone.
func TestFanOutIdempotencyAndItemErrors(t *testing.T) {
	t.Parallel()
	c := start(t, entitiestest.New(), nil).client
	ctx := ctxT(t)
	req := &pb.FanOutRequest{ArtifactId: 1, Kind: addKind, UserIds: []string{"Mike", "Anna"}, IdempotencyKey: "publish-1"}
	first, err := c.FanOut(ctx, req)
	require.NoError(t, err)
	_, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Anna", ArtifactId: 1, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED})
	require.NoError(t, err)
	again, err := c.FanOut(ctx, req)
	require.NoError(t, err)
	for i := range first.GetResults() {
		require.Equal(t, first.GetResults()[i].GetState().GetVersion(), again.GetResults()[i].GetState().GetVersion())
		require.True(t, again.GetResults()[i].GetState().GetArtifactInUserFeed(), "the first result")
	}
	anna, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "Anna", ArtifactId: 1})
	require.NoError(t, err)
	require.False(t, anna.GetState().GetArtifactInUserFeed(), "the retry did not put it back")

	reused, err := c.FanOut(ctx, &pb.FanOutRequest{ArtifactId: 1, Kind: readKind, UserIds: []string{"Mike", "Anna"}, IdempotencyKey: "publish-1"})
	require.NoError(t, err)
	require.Equal(t, int32(2), reused.GetFailed())
	for _, item := range reused.GetResults() {
		require.Equal(t, int32(codes.FailedPrecondition), item.GetError().GetCode())
		require.Equal(t, "IDEMPOTENCY_KEY_REUSED", item.GetError().GetReason())
		require.Equal(t, "idempotency_key", item.GetError().GetField())
	}

	failing := &failingEntities{Entities: entitiestest.New(), user: "Bob", err: fmt.Errorf("%w: overloaded", entities.ErrUnavailable)}
	c = start(t, failing, nil).client
	resp, err := c.FanOut(ctx, &pb.FanOutRequest{ArtifactId: 1, Kind: readKind, UserIds: []string{"Mike", "Bob"}})
	require.NoError(t, err)
	require.Equal(t, int32(1), resp.GetApplied())
	require.Equal(t, int32(1), resp.GetFailed())
	bob := resp.GetResults()[1].GetError()
	require.Equal(t, int32(codes.Unavailable), bob.GetCode())
	require.Equal(t, "TEMPORAL_UNAVAILABLE", bob.GetReason())
	require.Equal(t, 2*time.Second, bob.GetRetryDelay().AsDuration())
	require.True(t, resp.GetResults()[0].GetState().GetArtifactRead())
}

// failingEntities fails the writes of one user.
type failingEntities struct {
	*entitiestest.Entities
	user string
	err  error
}

func (f *failingEntities) Apply(ctx context.Context, k entityid.Key, cmd entities.Command) (workflows.State, error) {
	if k.UserID == f.user {
		return workflows.State{}, f.err
	}
	return f.Entities.Apply(ctx, k, cmd)
}

// startFanOut serves e with fan-outs of at most 3 users, 2 at a time,
// within timeout.
func startFanOut(t *testing.T, e pairs.Entities, timeout time.Duration) pb.ArtifactStateServiceClient {
	t.Helper()
	return start(t, e, func(d *Deps) {
		d.Pairs = pairs.New(e, nil, 5*time.Second, pairs.WithFanOut(pairs.FanOutLimits{MaxUsers: 3, Concurrency: 2, Timeout: timeout}))
	}).client
}

func TestFanOutBadInput(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	c := startFanOut(t, e, time.Minute)
	ctx := ctxT(t)
	for _, tc := range []struct {
		req   *pb.FanOutRequest
		field string
	}{
		{&pb.FanOutRequest{Kind: pb.CommandKind_COMMAND_KIND_UNSPECIFIED, UserIds: []string{"a"}}, "kind"},
		{&pb.FanOutRequest{Kind: addKind}, "user_ids"},
		{&pb.FanOutRequest{Kind: addKind, UserIds: []string{"a", "b", "c", "d"}}, "user_ids"},
		{&pb.FanOutRequest{Kind: addKind, UserIds: []string{"a", "b", "a"}}, "user_ids[2]"},
		{&pb.FanOutRequest{Kind: addKind, UserIds: []string{"a", "Mi\xffke"}}, "user_ids[1]"},
		{&pb.FanOutRequest{Kind: addKind, UserIds: []string{strings.Repeat("u", entityid.MaxUserIDBytes+1)}}, "user_ids[0]"},
		{&pb.FanOutRequest{Kind: addKind, UserIds: []string{"a"}, IdempotencyKey: "has space"}, "idempotency_key"},
	} {
		_, err := c.FanOut(ctx, tc.req)
		st := requireStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
		require.Equal(t, tc.field, violatedField(t, st), st.Message())
	}
	require.Zero(t, e.Len(), "no bad request may reach the entities")
}

// Every pair is authorized before anything is applied.
func TestFanOutAuthorizesEveryPair(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	var mu sync.Mutex
	var asked []string
	c := start(t, e, func(d *Deps) {
		d.Authorize = func(_ context.Context, userID string) error {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, userID)
			if userID != "Mike" {
				return &auth.Error{Err: auth.ErrForbidden, Reason: "own pairs only"}
			}
			return nil
		}
	}).client
	_, err := c.FanOut(ctxT(t), &pb.FanOutRequest{ArtifactId: 1, Kind: addKind, UserIds: []string{"Mike", "Anna", "Bob"}})
	requireStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"Mike", "Anna"}, asked)
	require.Zero(t, e.Len())
}

// A call whose deadline passed before its first item fails as a whole
// with DEADLINE_EXCEEDED; nothing was applied.
func TestFanOutWithNothingAttempted(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	c := startFanOut(t, e, time.Nanosecond)
	_, err := c.FanOut(ctxT(t), &pb.FanOutRequest{ArtifactId: 1, Kind: addKind, UserIds: []string{"Mike"}})
	st := requireStatus(t, err, codes.DeadlineExceeded, "TEMPORAL_TIMEOUT")
	require.Contains(t, st.Message(), "it was not applied")
	require.Zero(t, e.Len())
}
