package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/auth/authtest"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/workflows"
)

// The fan-out against the real stack, over HTTP and gRPC: one call puts an
// artifact into 1000 users' feeds and every pair reads it; a retry with the
// same key applies nothing twice; the key with another command fails each
// item; a bad user ID fails the call before anything is applied; with
// authentication on, only a service may name other users.
func TestFanOutAgainstTheRealStack(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) {
		// Correctness, not latency: on two cores beside other tests an
		// item may queue for seconds.
		c.API.RequestTimeout = 30 * time.Second
		c.API.FanoutTimeout = 5 * time.Minute
	})
	g := startGRPC(t, s)
	followers := make([]string, 1000)
	for i := range followers {
		followers[i] = fmt.Sprintf("follower %04d", i)
	}
	t.Run("HTTP", func(t *testing.T) { fanOutOverHTTP(t, s, followers) })
	t.Run("gRPC", func(t *testing.T) { fanOutOverGRPC(t, g, followers) })
	t.Run("auth", func(t *testing.T) { fanOutWithAuth(t, s) })
}

// httpFanOut is the part of a fan-out's HTTP answer the test reads.
type httpFanOut struct {
	Results []struct {
		UserID string   `json:"userId"`
		State  *v1State `json:"state"`
		Error  *struct {
			Code string `json:"code"`
		} `json:"error"`
	} `json:"results"`
	Applied int `json:"applied"`
	Failed  int `json:"failed"`
}

func postFanOut(t *testing.T, url string, artifactID int64, kind string, users []string, header map[string]string) (response, httpFanOut) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"kind": kind, "userIds": users})
	require.NoError(t, err)
	r, err := tryWith(http.MethodPost, fmt.Sprintf("%s/v1/artifacts/%d/fanout", url, artifactID), string(body), header)
	require.NoError(t, err)
	var out httpFanOut
	if r.status == http.StatusOK {
		require.NoError(t, json.Unmarshal([]byte(r.body), &out))
	}
	return r, out
}

func fanOutOverHTTP(t *testing.T, s *stack, followers []string) {
	const artifact = 1
	key := map[string]string{"Idempotency-Key": "publish-http-1"}
	started := time.Now()
	r, first := postFanOut(t, s.api.URL, artifact, "setArtifactAddedToUserFeed", followers, key)
	took := time.Since(started)
	require.Equal(t, http.StatusOK, r.status, "%.500s", r.body)
	require.Equal(t, len(followers), first.Applied, "%.500s", r.body)
	require.Zero(t, first.Failed)
	for i, item := range first.Results {
		require.Equal(t, followers[i], item.UserID)
		require.Equal(t, v1State{ArtifactInUserFeed: true, Version: 1}, *item.State, item.UserID)
	}
	t.Logf("HTTP: a fan-out to %d users took %v (%.0f pairs/s)", len(followers), took, float64(len(followers))/took.Seconds())
	requireEveryPair(t, s, followers, artifact)

	again, _ := postFanOut(t, s.api.URL, artifact, "setArtifactAddedToUserFeed", followers, key)
	require.Equal(t, r.body, again.body, "the retry answers every item's first result")
	requireEveryPair(t, s, followers, artifact)
	requireAppliedOnce(t, s, followers, artifact)

	r, reused := postFanOut(t, s.api.URL, artifact, "setArtifactReadByUser", followers[:10], key)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, 10, reused.Failed)
	for _, item := range reused.Results {
		require.Equal(t, "idempotency_key_reused", item.Error.Code, item.UserID)
	}

	r, _ = postFanOut(t, s.api.URL, artifact, "setArtifactAddedToUserFeed", []string{"a new user", "bad\x00user"}, nil)
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	require.Contains(t, r.body, `"field":"userIds[1]"`)
	require.Contains(t, s.get(t, "/artifactState/getAllStates", artifact, "a new user").body, `"artifactInUserFeed":false`,
		"nothing was applied")
}

// requireEveryPair reads every follower's pair (strong batch reads): in
// the feed, at version 1.
func requireEveryPair(t *testing.T, s *stack, followers []string, artifact int64) {
	t.Helper()
	for from := 0; from < len(followers); from += 100 {
		var pairs []map[string]any
		for _, u := range followers[from:min(from+100, len(followers))] {
			pairs = append(pairs, map[string]any{"userId": u, "artifactId": artifact})
		}
		body, err := json.Marshal(map[string]any{"pairs": pairs})
		require.NoError(t, err)
		r := s.post(t, "/v1/batch-get", string(body))
		require.Equal(t, http.StatusOK, r.status, r.body)
		var got struct {
			Results []struct {
				UserID string `json:"userId"`
				v1State
			} `json:"results"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &got))
		for i, res := range got.Results {
			require.Equal(t, followers[from+i], res.UserID)
			require.Equal(t, v1State{ArtifactInUserFeed: true, Version: 1}, res.v1State, res.UserID)
		}
	}
}

// requireAppliedOnce asks a sample of the entities how many commands they
// applied: one each.
func requireAppliedOnce(t *testing.T, s *stack, followers []string, artifact int64) {
	t.Helper()
	for i := 0; i < len(followers); i += 97 {
		k := entityid.Key{UserID: followers[i], ArtifactID: artifact}
		v, err := s.client.QueryWorkflow(context.Background(), k.WorkflowID(), "", workflows.QueryGetAllStates)
		require.NoError(t, err)
		var st workflows.State
		require.NoError(t, v.Get(&st))
		require.Equal(t, uint64(1), st.CommandsApplied, k.String())
	}
}

func fanOutOverGRPC(t *testing.T, g *grpcStack, followers []string) {
	const artifact = 2
	ctx := callCtx(t)
	add := pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED
	req := &pb.FanOutRequest{ArtifactId: artifact, Kind: add, UserIds: followers, IdempotencyKey: "publish-grpc-2"}
	started := time.Now()
	first, err := g.client.FanOut(ctx, req)
	took := time.Since(started)
	require.NoError(t, err)
	require.Equal(t, int32(len(followers)), first.GetApplied())
	for i, item := range first.GetResults() {
		require.Equal(t, followers[i], item.GetUserId())
		require.True(t, item.GetState().GetArtifactInUserFeed(), item.GetUserId())
		require.Equal(t, uint64(1), item.GetState().GetVersion(), item.GetUserId())
	}
	t.Logf("gRPC: a fan-out to %d users took %v (%.0f pairs/s)", len(followers), took, float64(len(followers))/took.Seconds())
	requireEveryPair(t, g.stack, followers, artifact)

	again, err := g.client.FanOut(ctx, req)
	require.NoError(t, err)
	require.True(t, proto.Equal(first, again), "the retry answers every item's first result")
	requireEveryPair(t, g.stack, followers, artifact)
	requireAppliedOnce(t, g.stack, followers, artifact)

	reused, err := g.client.FanOut(ctx, &pb.FanOutRequest{ArtifactId: artifact, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER,
		UserIds: followers[:10], IdempotencyKey: req.GetIdempotencyKey()})
	require.NoError(t, err)
	require.Equal(t, int32(10), reused.GetFailed())
	for _, item := range reused.GetResults() {
		require.Equal(t, "IDEMPOTENCY_KEY_REUSED", item.GetError().GetReason(), item.GetUserId())
	}

	_, err = g.client.FanOut(ctx, &pb.FanOutRequest{ArtifactId: artifact, Kind: add, UserIds: []string{"a new user", "bad\x00user"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, "user_ids[1]", grpcField(err))
	st, err := g.client.GetPair(ctx, &pb.GetPairRequest{UserId: "a new user", ArtifactId: artifact})
	require.NoError(t, err)
	require.Zero(t, st.GetState().GetVersion(), "nothing was applied")
}

// fanOutWithAuth serves both APIs on the stack with authentication on: a
// caller without a service scope naming another user gets 403 /
// PERMISSION_DENIED and nothing is applied; a service gets its fan-out.
func fanOutWithAuth(t *testing.T, s *stack) {
	idp := authtest.New(t)
	a, err := auth.New(t.Context(), idp.Config(), auth.Options{Logger: testenv.Logger()})
	require.NoError(t, err)
	pairs := testenv.Pairs(s.client, s.cfg, nil)
	guard := apiguard.New(s.cfg.API, a)
	api := httptest.NewServer(server.NewHandler(s.cfg.API, server.Deps{Pairs: pairs, Middleware: guard.Middleware, Authorize: guard.Authorize,
		Logger: testenv.Logger()}))
	t.Cleanup(api.Close)
	users := []string{"auth follower 1", "auth follower 2"}
	mine := map[string]string{"Authorization": "Bearer " + idp.Token(users[0], "", time.Minute)}
	service := map[string]string{"Authorization": "Bearer " + idp.Token("feed-service", auth.ScopeService, time.Minute)}

	r, _ := postFanOut(t, api.URL, 3, "setArtifactAddedToUserFeed", users, mine)
	require.Equal(t, http.StatusForbidden, r.status, r.body)
	require.Contains(t, r.body, `"code":"permission_denied"`)
	r, _ = postFanOut(t, api.URL, 3, "setArtifactAddedToUserFeed", users, nil)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	require.Contains(t, s.get(t, "/artifactState/getAllStates", 3, users[0]).body, `"artifactInUserFeed":false`,
		"nothing was applied, not even the caller's own pair")
	r, ok := postFanOut(t, api.URL, 3, "setArtifactAddedToUserFeed", users, service)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, 2, ok.Applied)

	c := startGRPCWith(t, s, func(d *grpcapi.Deps) {
		d.Pairs, d.Authorize = pairs, a.Rules().AuthorizeContext
		d.UnaryInterceptors = []grpc.UnaryServerInterceptor{grpcapi.UnaryAuthenticator(a)}
	}).client
	as := func(h map[string]string) context.Context {
		return metadata.AppendToOutgoingContext(callCtx(t), "authorization", h["Authorization"])
	}
	req := &pb.FanOutRequest{ArtifactId: 4, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED, UserIds: users}
	_, err = c.FanOut(as(mine), req)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, s.get(t, "/artifactState/getAllStates", 4, users[0]).body, `"artifactInUserFeed":false`, "nothing was applied")
	resp, err := c.FanOut(as(service), req)
	require.NoError(t, err)
	require.Equal(t, int32(2), resp.GetApplied())
}
