package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/auth/authtest"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// hookedEntities is the in-memory store (entitiestest) with hooks run on
// entry to each call, to hold or observe calls of given pairs.
type hookedEntities struct {
	*entitiestest.Entities
	onApply func(context.Context, entityid.Key, entities.Command)
	onState func(context.Context, entityid.Key) error
}

func (h *hookedEntities) Apply(ctx context.Context, k entityid.Key, cmd entities.Command) (workflows.State, error) {
	if h.onApply != nil {
		h.onApply(ctx, k, cmd)
	}
	return h.Entities.Apply(ctx, k, cmd)
}

func (h *hookedEntities) State(ctx context.Context, k entityid.Key) (workflows.State, error) {
	if h.onState != nil {
		if err := h.onState(ctx, k); err != nil {
			return workflows.State{}, err
		}
	}
	return h.Entities.State(ctx, k)
}

type testServer struct {
	client  pb.ArtifactStateServiceClient
	conn    *grpc.ClientConn
	metrics *metrics.Metrics
	server  *Server
}

// start serves the API over an in-memory connection.
func start(t *testing.T, e pairs.Entities, tune func(*Deps)) testServer {
	t.Helper()
	m := metrics.New("test", "test")
	d := Deps{Pairs: pairs.New(e, nil, 5*time.Second), Metrics: m, Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&d)
	}
	srv, err := New(Options{RequestTimeout: 5 * time.Second, RetryAfter: 2 * time.Second, HealthInterval: 20 * time.Millisecond}, d)
	require.NoError(t, err)
	ln := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return testServer{client: pb.NewArtifactStateServiceClient(conn), conn: conn, metrics: m, server: srv}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireStatus checks the code and the ErrorInfo reason of err, and
// returns its status.
func requireStatus(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, code, st.Code(), st.Message())
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	require.NotNil(t, info, "no ErrorInfo in %v", st.Details())
	require.Equal(t, reason, info.GetReason())
	require.Equal(t, apiwire.ErrorDomain, info.GetDomain())
	return st
}

// violatedField is the one field of the status's BadRequest.
func violatedField(t *testing.T, st *status.Status) string {
	t.Helper()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			require.Len(t, br.GetFieldViolations(), 1)
			return br.GetFieldViolations()[0].GetField()
		}
	}
	t.Fatalf("no BadRequest in %v", st.Details())
	return ""
}

// Every bad input of every method answers InvalidArgument naming the field.
func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	s := start(t, entitiestest.New(), nil)
	c := s.client
	ctx := ctxT(t)
	badUTF8 := "Mi\xffke"
	long := strings.Repeat("u", entityid.MaxUserIDBytes+1)
	v := uint64(1)
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"set read: empty user", func() error {
			_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{ArtifactId: 1})
			return err
		}, "user_id"},
		{"add: invalid UTF-8", func() error {
			_, err := c.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: badUTF8, ArtifactId: 1})
			return err
		}, "user_id"},
		{"remove: key with a space", func() error {
			_, err := c.SetArtifactRemovedFromUserFeed(ctx, &pb.SetArtifactRemovedFromUserFeedRequest{UserId: "Mike", ArtifactId: 1, IdempotencyKey: "a b"})
			return err
		}, "idempotency_key"},
		{"is read: too long", func() error {
			_, err := c.IsArtifactReadByUser(ctx, &pb.IsArtifactReadByUserRequest{UserId: long, ArtifactId: 1})
			return err
		}, "user_id"},
		{"in feed: control character", func() error {
			_, err := c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: "Mi\nke", ArtifactId: 1})
			return err
		}, "user_id"},
		{"all states: empty user", func() error {
			_, err := c.GetAllStates(ctx, &pb.GetAllStatesRequest{ArtifactId: 1})
			return err
		}, "user_id"},
		{"apply: no kind", func() error {
			_, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1})
			return err
		}, "kind"},
		{"apply: unknown kind", func() error {
			_, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1, Kind: 42, IfVersion: &v})
			return err
		}, "kind"},
		{"apply: key too long", func() error {
			_, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1,
				Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IdempotencyKey: strings.Repeat("k", MaxIdempotencyKey+1)})
			return err
		}, "idempotency_key"},
		{"get: unknown consistency", func() error {
			_, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "Mike", ArtifactId: 1, Consistency: 9})
			return err
		}, "consistency"},
		{"get: bad user", func() error {
			_, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: badUTF8, ArtifactId: 1})
			return err
		}, "user_id"},
		{"batch: no pairs", func() error {
			_, err := c.BatchGet(ctx, &pb.BatchGetRequest{})
			return err
		}, "pairs"},
		{"batch: too many pairs", func() error {
			_, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: make([]*pb.Pair, 101)})
			return err
		}, "pairs"},
		{"batch: bad second pair", func() error {
			_, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike", ArtifactId: 1}, {UserId: "", ArtifactId: 2}}})
			return err
		}, "pairs[1].user_id"},
		{"batch: unknown consistency", func() error {
			_, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike"}}, Consistency: 7})
			return err
		}, "consistency"},
		{"feed: bad user", func() error {
			_, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: ""})
			return err
		}, "user_id"},
		{"feed: page too large", func() error {
			_, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Mike", PageSize: 1001})
			return err
		}, "page_size"},
		{"feed: page too large with state", func() error {
			_, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Mike", PageSize: 101, IncludeState: true})
			return err
		}, "page_size"},
		{"feed: negative page", func() error {
			_, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Mike", PageSize: -1})
			return err
		}, "page_size"},
		{"feed: unknown consistency", func() error {
			_, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Mike", IncludeState: true, Consistency: 5})
			return err
		}, "consistency"},
		{"read list: bad user", func() error {
			_, err := c.ListRead(ctx, &pb.ListReadRequest{UserId: "a\x00b"})
			return err
		}, "user_id"},
		{"read list: negative page", func() error {
			_, err := c.ListRead(ctx, &pb.ListReadRequest{UserId: "Mike", PageSize: -5})
			return err
		}, "page_size"},
	}
	for _, tc := range cases {
		st := requireStatus(t, tc.call(), codes.InvalidArgument, apiwire.InvalidArgument.Reason)
		require.Equal(t, tc.field, violatedField(t, st), tc.name)
		require.True(t, strings.HasPrefix(st.Message(), tc.field+": "), "%s: %q", tc.name, st.Message())
	}
}

func TestApplyCommandAnswersTheStateAndVersion(t *testing.T) {
	t.Parallel()
	c := start(t, entitiestest.New(), nil).client
	ctx := ctxT(t)
	r, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 7, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED})
	require.NoError(t, err)
	require.Equal(t, "Mike", r.GetState().GetUserId())
	require.Equal(t, int64(7), r.GetState().GetArtifactId())
	require.True(t, r.GetState().GetArtifactInUserFeed())
	require.Equal(t, uint64(1), r.GetState().GetVersion())
	require.Equal(t, pb.Consistency_CONSISTENCY_STRONG, r.GetState().GetConsistency())
	require.NotNil(t, r.GetState().GetArtifactInUserFeedChangedAt())

	all, err := c.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 7})
	require.NoError(t, err)
	require.True(t, proto.Equal(&pb.GetAllStatesResponse{ArtifactId: 7, ArtifactInUserFeed: true, UserId: "Mike"}, all), "%v", all)
}

func TestConditionalWriteAnswersTheCurrentState(t *testing.T) {
	t.Parallel()
	c := start(t, entitiestest.New(), nil).client
	ctx := ctxT(t)
	zero := uint64(0)
	_, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 7, IfVersion: &zero,
		Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED})
	require.NoError(t, err)
	_, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 7, IfVersion: &zero,
		Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED})
	st := requireStatus(t, err, codes.FailedPrecondition, apiwire.VersionMismatch.Reason)
	var current *pb.PairState
	var precondition *errdetails.PreconditionFailure
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *pb.PairState:
			current = d
		case *errdetails.PreconditionFailure:
			precondition = d
		}
	}
	require.NotNil(t, precondition)
	require.NotNil(t, current, "the current state is in the details")
	require.Equal(t, uint64(1), current.GetVersion())
	require.True(t, current.GetArtifactInUserFeed())
	require.Equal(t, "Mike", current.GetUserId())
	got, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "Mike", ArtifactId: 7})
	require.NoError(t, err)
	require.True(t, got.GetState().GetArtifactInUserFeed(), "nothing was applied")
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	c := start(t, entitiestest.New(), nil).client
	ctx := ctxT(t)
	add := &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 7, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED, IdempotencyKey: "add-7"}
	first, err := c.ApplyCommand(ctx, add)
	require.NoError(t, err)
	_, err = c.SetArtifactRemovedFromUserFeed(ctx, &pb.SetArtifactRemovedFromUserFeedRequest{UserId: "Mike", ArtifactId: 7})
	require.NoError(t, err)
	again, err := c.ApplyCommand(ctx, add)
	require.NoError(t, err)
	require.True(t, proto.Equal(first, again), "the retry answers the first result")
	in, err := c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: "Mike", ArtifactId: 7})
	require.NoError(t, err)
	require.False(t, in.GetAnswer(), "the retry did not put the artifact back")

	_, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 7, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IdempotencyKey: "add-7"})
	st := requireStatus(t, err, codes.FailedPrecondition, apiwire.IdempotencyKeyReused.Reason)
	require.Equal(t, "idempotency_key", violatedField(t, st))
}

// Temporal's and Cassandra's failures map to the codes the proto documents.
func TestFailuresMapToCodes(t *testing.T) {
	t.Parallel()
	store := entitiestest.New()
	c := start(t, store, nil).client
	ctx := ctxT(t)
	read := func() error {
		_, err := c.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 1})
		return err
	}
	write := func() error {
		_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "Mike", ArtifactId: 1})
		return err
	}
	for _, tc := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{fmt.Errorf("%w: connection refused", entities.ErrUnavailable), codes.Unavailable, apiwire.TemporalUnavailable.Reason},
		{fmt.Errorf("%w: workflow task failing", entities.ErrEntityStuck), codes.Unavailable, apiwire.EntityStuck.Reason},
		{fmt.Errorf("%w: deadline", entities.ErrTimeout), codes.DeadlineExceeded, apiwire.TemporalTimeout.Reason},
		{errors.New("something else"), codes.Internal, apiwire.Internal.Reason},
	} {
		store.FailWith(tc.err)
		for _, call := range []func() error{read, write} {
			st := requireStatus(t, call(), tc.code, tc.reason)
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				if r, ok := d.(*errdetails.RetryInfo); ok {
					retry = r
				}
			}
			if tc.code == codes.Unavailable {
				require.NotNil(t, retry, "Unavailable says when to retry")
				require.Equal(t, 2*time.Second, retry.GetRetryDelay().AsDuration())
			} else {
				require.Nil(t, retry)
			}
			if tc.code == codes.Internal {
				require.Equal(t, "internal error", st.Message(), "no internals leak")
			}
		}
	}
	store.FailWith(fmt.Errorf("%w: deadline", entities.ErrTimeout))
	require.Contains(t, status.Convert(write()).Message(), "retry it with the same idempotency_key")
	require.NotContains(t, status.Convert(read()).Message(), "idempotency_key")

	store.FailWith(nil)
	for name, call := range map[string]func() error{
		"eventual get": func() error {
			_, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "Mike", ArtifactId: 1, Consistency: pb.Consistency_CONSISTENCY_EVENTUAL})
			return err
		},
		"eventual batch": func() error {
			_, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike"}}, Consistency: pb.Consistency_CONSISTENCY_EVENTUAL})
			return err
		},
		"feed": func() error { _, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Mike"}); return err },
		"read": func() error { _, err := c.ListRead(ctx, &pb.ListReadRequest{UserId: "Mike"}); return err },
	} {
		st := requireStatus(t, call(), codes.FailedPrecondition, apiwire.ReadModelNotConfigured.Reason)
		require.Contains(t, st.Message(), "cassandra.hosts", name)
	}
}

// A batch answers each pair's state or the error it would have got alone.
func TestBatchGetPerItemErrors(t *testing.T) {
	t.Parallel()
	stuck := entityid.Key{UserID: "Stuck", ArtifactID: 2}
	h := &hookedEntities{Entities: entitiestest.New(), onState: func(_ context.Context, k entityid.Key) error {
		if k == stuck {
			return fmt.Errorf("%w: test", entities.ErrEntityStuck)
		}
		return nil
	}}
	c := start(t, h, nil).client
	ctx := ctxT(t)
	_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "Mike", ArtifactId: 1})
	require.NoError(t, err)
	r, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike", ArtifactId: 1}, {UserId: "Stuck", ArtifactId: 2}, {UserId: "Ann", ArtifactId: 3}}})
	require.NoError(t, err)
	require.Len(t, r.GetResults(), 3)
	require.True(t, r.GetResults()[0].GetState().GetArtifactRead())
	e := r.GetResults()[1].GetError()
	require.NotNil(t, e)
	require.Equal(t, "Stuck", r.GetResults()[1].GetUserId())
	require.Equal(t, int32(codes.Unavailable), e.GetCode())
	require.Equal(t, apiwire.EntityStuck.Reason, e.GetReason())
	require.Equal(t, 2*time.Second, e.GetRetryDelay().AsDuration())
	require.Equal(t, "Ann", r.GetResults()[2].GetState().GetUserId())
	require.False(t, r.GetResults()[2].GetState().GetArtifactRead())
}

// session sends reqs on one stream and returns the answers as they come.
func openSession(t *testing.T, c pb.ArtifactStateServiceClient, reqs []*pb.SessionRequest) (pb.ArtifactStateService_SessionClient, <-chan *pb.SessionResponse) {
	t.Helper()
	stream, err := c.Session(ctxT(t))
	require.NoError(t, err)
	for _, r := range reqs {
		require.NoError(t, stream.Send(r))
	}
	out := make(chan *pb.SessionResponse, len(reqs))
	go func() {
		defer close(out)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			out <- resp
		}
	}()
	return stream, out
}

func getReq(id, user string, artifact int64) *pb.SessionRequest {
	return &pb.SessionRequest{CorrelationId: id, Request: &pb.SessionRequest_GetPair{GetPair: &pb.GetPairRequest{UserId: user, ArtifactId: artifact}}}
}

func applyReq(id, user string, artifact int64, kind pb.CommandKind) *pb.SessionRequest {
	return &pb.SessionRequest{CorrelationId: id, Request: &pb.SessionRequest_ApplyCommand{ApplyCommand: &pb.ApplyCommandRequest{UserId: user, ArtifactId: artifact, Kind: kind}}}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Requests of a session run concurrently, and the answers come in request
// order: a slow first read holds back the answers of later ones that have
// already run.
func TestSessionAnswersInOrder(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var fastReads atomic.Int32
	h := &hookedEntities{Entities: entitiestest.New(), onState: func(ctx context.Context, k entityid.Key) error {
		if k.UserID == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		} else {
			fastReads.Add(1)
		}
		return nil
	}}
	c := start(t, h, nil).client
	stream, answers := openSession(t, c, []*pb.SessionRequest{
		getReq("a", "slow", 1), getReq("b", "fast", 2), getReq("c", "fast", 3),
		{CorrelationId: "d"}, // neither request: an error answer, the stream goes on
	})
	waitFor(t, "the later reads ran while the first one waits", func() bool { return fastReads.Load() == 2 })
	select {
	case r := <-answers:
		t.Fatalf("answer %q came before the first request's", r.GetCorrelationId())
	default:
	}
	close(release)
	require.NoError(t, stream.CloseSend())
	var got []string
	for r := range answers {
		got = append(got, r.GetCorrelationId())
	}
	require.Equal(t, []string{"a", "b", "c", "d"}, got)
}

func TestSessionAnswers(t *testing.T) {
	t.Parallel()
	c := start(t, entitiestest.New(), nil).client
	zero := uint64(0)
	stream, answers := openSession(t, c, []*pb.SessionRequest{
		applyReq("add", "Mike", 1, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED),
		getReq("get", "Mike", 1),
		{CorrelationId: "stale", Request: &pb.SessionRequest_ApplyCommand{ApplyCommand: &pb.ApplyCommandRequest{
			UserId: "Mike", ArtifactId: 1, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IfVersion: &zero}}},
		getReq("bad", "", 1),
		applyReq("no-kind", "Mike", 2, pb.CommandKind_COMMAND_KIND_UNSPECIFIED),
		getReq("Mi\xffke", "Mike", 1),
	})
	require.NoError(t, stream.CloseSend())
	var got []*pb.SessionResponse
	for r := range answers {
		got = append(got, r)
	}
	require.Len(t, got, 6)
	require.True(t, got[0].GetApplyCommand().GetState().GetArtifactInUserFeed())
	require.Equal(t, uint64(1), got[1].GetGetPair().GetState().GetVersion(), "a read sees the write sent before it")
	require.Equal(t, int32(codes.FailedPrecondition), got[2].GetError().GetCode())
	require.Equal(t, apiwire.VersionMismatch.Reason, got[2].GetError().GetReason())
	require.Equal(t, uint64(1), got[2].GetError().GetCurrent().GetVersion())
	require.Equal(t, "get_pair.user_id", got[3].GetError().GetField())
	require.Equal(t, int32(codes.InvalidArgument), got[3].GetError().GetCode())
	require.Equal(t, "apply_command.kind", got[4].GetError().GetField())
	require.Equal(t, "correlation_id", got[5].GetError().GetField())
}

// Requests on the same pair run one after the other in stream order;
// requests on other pairs do not wait for them.
func TestSessionKeepsThePairsOrder(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var events []string
	var otherApplied atomic.Bool
	h := &hookedEntities{Entities: entitiestest.New()}
	h.onApply = func(ctx context.Context, k entityid.Key, cmd entities.Command) {
		if k.UserID != "Mike" {
			otherApplied.Store(true)
			return
		}
		mu.Lock()
		events = append(events, "enter "+string(cmd.Kind))
		first := len(events) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	c := start(t, h, nil).client
	stream, answers := openSession(t, c, []*pb.SessionRequest{
		applyReq("1", "Mike", 1, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED),
		applyReq("2", "Mike", 1, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED),
		applyReq("3", "Ann", 1, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER),
	})
	waitFor(t, "the other pair's command ran while the first waits", otherApplied.Load)
	mu.Lock()
	require.Equal(t, []string{"enter setArtifactAddedToUserFeed"}, events, "the second command on the pair waits for the first")
	mu.Unlock()
	close(release)
	require.NoError(t, stream.CloseSend())
	var last *pb.SessionResponse
	for r := range answers {
		if r.GetCorrelationId() == "2" {
			last = r
		}
	}
	require.NotNil(t, last)
	require.False(t, last.GetApplyCommand().GetState().GetArtifactInUserFeed(), "applied in stream order: add, then remove")
	require.Equal(t, uint64(2), last.GetApplyCommand().GetState().GetVersion())
}

// A session works on at most SessionConcurrency requests at once.
func TestSessionConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var running, most atomic.Int32
	h := &hookedEntities{Entities: entitiestest.New(), onState: func(ctx context.Context, _ entityid.Key) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	c := start(t, h, nil).client
	const n = 3 * SessionConcurrency
	reqs := make([]*pb.SessionRequest, n)
	for i := range reqs {
		reqs[i] = getReq(fmt.Sprint(i), fmt.Sprintf("user-%d", i), int64(i))
	}
	stream, answers := openSession(t, c, reqs)
	waitFor(t, "SessionConcurrency reads running", func() bool { return running.Load() == SessionConcurrency })
	close(release)
	require.NoError(t, stream.CloseSend())
	count := 0
	for r := range answers {
		require.Equal(t, fmt.Sprint(count), r.GetCorrelationId())
		count++
	}
	require.Equal(t, n, count)
	require.Equal(t, int32(SessionConcurrency), most.Load(), "never more than SessionConcurrency at once")
}

// The Authorizer sees every pair a request names; what it refuses answers
// PermissionDenied, per item in a session.
func TestAuthorizerIsAskedForEveryPair(t *testing.T) {
	t.Parallel()
	own := func(ctx context.Context, userID string) error {
		if userID != "Mike" {
			return status.Error(codes.PermissionDenied, "only Mike's pairs")
		}
		return nil
	}
	c := start(t, entitiestest.New(), func(d *Deps) { d.Authorize = own }).client
	ctx := ctxT(t)
	_, err := c.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 1})
	require.NoError(t, err)
	_, err = c.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Ann", ArtifactId: 1})
	st := requireStatus(t, err, codes.PermissionDenied, apiwire.PermissionDenied.Reason)
	require.Equal(t, "only Mike's pairs", st.Message())
	_, err = c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike"}, {UserId: "Ann"}}})
	requireStatus(t, err, codes.PermissionDenied, apiwire.PermissionDenied.Reason)
	_, err = c.ListRead(ctx, &pb.ListReadRequest{UserId: "Ann"})
	requireStatus(t, err, codes.PermissionDenied, apiwire.PermissionDenied.Reason)
	stream, answers := openSession(t, c, []*pb.SessionRequest{getReq("ann", "Ann", 1), getReq("mike", "Mike", 1)})
	require.NoError(t, stream.CloseSend())
	first, second := <-answers, <-answers
	require.Equal(t, int32(codes.PermissionDenied), first.GetError().GetCode())
	require.NotNil(t, second.GetGetPair())
}

func TestMetricsCountCallsByMethodAndCode(t *testing.T) {
	t.Parallel()
	s := start(t, entitiestest.New(), nil)
	ctx := ctxT(t)
	_, err := s.client.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 1})
	require.NoError(t, err)
	_, err = s.client.GetAllStates(ctx, &pb.GetAllStatesRequest{ArtifactId: 1})
	require.Error(t, err)
	families, err := s.metrics.Registry.Gather()
	require.NoError(t, err)
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_method"] == "GetAllStates" {
				counts[labels["grpc_code"]] = m.GetCounter().GetValue()
			}
		}
	}
	require.Equal(t, 1.0, counts["OK"], "%v", counts)
	require.Equal(t, 1.0, counts["InvalidArgument"], "%v", counts)
}

// Stopping does not wait for long-lived streams: a health watch ends at
// once, and a session answers the request it started, then ends with
// Unavailable.
func TestStopEndsStreamsPromptly(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	h := &hookedEntities{Entities: entitiestest.New(), onState: func(ctx context.Context, k entityid.Key) error {
		if k.UserID == "slow" {
			close(started)
			<-release
		}
		return nil
	}}
	s := start(t, h, nil)
	ctx := ctxT(t)
	watch, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: apiwire.ServiceName})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.NotNil(t, first)
	stream, answers := openSession(t, s.client, []*pb.SessionRequest{getReq("held", "slow", 1)})
	<-started

	stopped := make(chan time.Duration, 1)
	go func() {
		began := time.Now()
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.server.Stop(stopCtx)
		stopped <- time.Since(began)
	}()
	for {
		r, err := watch.Recv()
		if err != nil {
			require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			break
		}
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, r.GetStatus())
	}
	close(release)
	held := <-answers
	require.Equal(t, "held", held.GetCorrelationId())
	require.NotNil(t, held.GetGetPair(), "the started request is answered")
	_, open := <-answers
	require.False(t, open)
	_, err = stream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Less(t, <-stopped, 30*time.Second, "Stop did not wait for its deadline")
}

// With auth on, the gRPC API takes the HTTP API's credentials as metadata
// and applies the same own-user rule; health checks need none.
func TestAuthenticationWithTheHTTPAPIsVerifier(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	a, err := auth.New(context.Background(), idp.Config(), auth.Options{})
	require.NoError(t, err)
	s := start(t, entitiestest.New(), func(d *Deps) {
		d.Authorize = a.Rules().AuthorizeContext
		d.UnaryInterceptors = []grpc.UnaryServerInterceptor{UnaryAuthenticator(a)}
		d.StreamInterceptors = []grpc.StreamServerInterceptor{StreamAuthenticator(a)}
	})
	ctx := ctxT(t)
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	req := &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 1}
	_, err = s.client.GetAllStates(ctx, req)
	requireStatus(t, err, codes.Unauthenticated, apiwire.Unauthenticated.Reason)
	_, err = s.client.GetAllStates(as(idp.Token("Mike", "", -time.Minute)), req)
	requireStatus(t, err, codes.Unauthenticated, apiwire.Unauthenticated.Reason)
	_, err = s.client.GetAllStates(as(idp.Token("Mike", "", time.Minute)), req)
	require.NoError(t, err, "a user reads its own pairs")
	_, err = s.client.GetAllStates(as(idp.Token("Ann", "", time.Minute)), req)
	requireStatus(t, err, codes.PermissionDenied, apiwire.PermissionDenied.Reason)
	_, err = s.client.GetAllStates(as(idp.Token("feed-service", auth.ScopeService, time.Minute)), req)
	require.NoError(t, err, "a service reads every user's pairs")

	stream, err := s.client.Session(ctx)
	require.NoError(t, err)
	_, err = stream.Recv()
	requireStatus(t, err, codes.Unauthenticated, apiwire.Unauthenticated.Reason)

	r, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health checks need no credentials")
	require.NotNil(t, r)
}

// A burst above the rate limit gets ResourceExhausted with RetryInfo, as the
// HTTP API answers 429; health checks are not limited.
func TestBurstAboveTheRateLimit(t *testing.T) {
	t.Parallel()
	rl := limits.NewRateLimiter(config.RateLimit{PerClient: 1, PerClientBurst: 5})
	s := start(t, entitiestest.New(), func(d *Deps) {
		d.UnaryInterceptors = []grpc.UnaryServerInterceptor{UnaryClientLimit(rl)}
	})
	ok, limited := 0, 0
	for range 20 {
		_, err := s.client.GetAllStates(ctxT(t), &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 1})
		if err == nil {
			ok++
			continue
		}
		st := requireStatus(t, err, codes.ResourceExhausted, "RATE_LIMITED")
		var retry *errdetails.RetryInfo
		for _, d := range st.Details() {
			if r, isRetry := d.(*errdetails.RetryInfo); isRetry {
				retry = r
			}
		}
		require.NotNil(t, retry, "no RetryInfo")
		limited++
	}
	require.Equal(t, 5, ok, "the burst")
	require.Equal(t, 15, limited)
	_, err := healthpb.NewHealthClient(s.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health checks are not limited")
}
