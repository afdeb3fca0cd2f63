package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/workflows"
)

// The gRPC API end to end: a real gRPC client on a TCP connection to the
// real server (internal/grpcapi), the real entities and worker, and an
// in-process Temporal server.

// grpcStack serves the gRPC API of stack s on a free loopback port.
type grpcStack struct {
	*stack
	addr   string
	client pb.ArtifactStateServiceClient
	conn   *grpc.ClientConn
}

func startGRPC(t *testing.T, s *stack) *grpcStack {
	t.Helper()
	return startGRPCWith(t, s, nil)
}

// startGRPCWith is startGRPC with the server's dependencies tuned (auth).
func startGRPCWith(t *testing.T, s *stack, tune func(*grpcapi.Deps)) *grpcStack {
	t.Helper()
	d := grpcapi.Deps{Pairs: testenv.Pairs(s.client, s.cfg, s.store), Metrics: metrics.New("test", "test"), Logger: testenv.Logger()}
	if tune != nil {
		tune(&d)
	}
	srv, err := grpcapi.New(grpcapi.Options{RequestTimeout: s.cfg.API.RequestTimeout, RetryAfter: s.cfg.API.RetryAfter,
		HealthInterval: 100 * time.Millisecond}, d)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
		require.NoError(t, <-served)
	})
	g := &grpcStack{stack: s, addr: ln.Addr().String()}
	g.conn, g.client = g.dial(t)
	return g
}

// dial opens another client connection (another client of the API).
func (g *grpcStack) dial(t *testing.T) (*grpc.ClientConn, pb.ArtifactStateServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn, pb.NewArtifactStateServiceClient(conn)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// grpcReason is the ErrorInfo reason of a status error.
func grpcReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func grpcField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

func TestGRPCAPI(t *testing.T) {
	t.Parallel()
	g := startGRPC(t, startStack(t, func(c *config.Config) {
		c.Worker.MaxHistoryEvents = 100 // continue-as-new every few dozen commands
		c.API.RequestTimeout = time.Minute
	}))
	t.Run("original calls", func(t *testing.T) { grpcOriginalCalls(t, g) })
	t.Run("v1 calls", func(t *testing.T) { grpcV1Calls(t, g) })
	t.Run("session answers in order", func(t *testing.T) { grpcSession(t, g) })
	t.Run("idempotency across a retry and continue-as-new", func(t *testing.T) { grpcIdempotency(t, g) })
	t.Run("conditional-write race", func(t *testing.T) { grpcConditionalRace(t, g) })
	t.Run("batch per-item errors", func(t *testing.T) { grpcBatchErrors(t, g) })
	t.Run("bad input", func(t *testing.T) { grpcBadInput(t, g) })
	t.Run("health and reflection", func(t *testing.T) { grpcHealthAndReflection(t, g) })
}

// The original spec's sequence through the six original calls.
func grpcOriginalCalls(t *testing.T, g *grpcStack) {
	c, ctx := g.client, callCtx(t)
	mike := func() (string, int64) { return "Mike", 1 }
	u, a := mike()
	_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	read, err := c.IsArtifactReadByUser(ctx, &pb.IsArtifactReadByUserRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	require.True(t, proto.Equal(&pb.IsArtifactReadByUserResponse{Answer: true, ArtifactId: 1, UserId: "Mike"}, read), "%v", read)
	added, err := c.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	require.True(t, added.GetSuccess())
	in, err := c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	require.True(t, in.GetAnswer())
	_, err = c.SetArtifactRemovedFromUserFeed(ctx, &pb.SetArtifactRemovedFromUserFeedRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	in, err = c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	require.False(t, in.GetAnswer())
	all, err := c.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: u, ArtifactId: a})
	require.NoError(t, err)
	require.True(t, proto.Equal(&pb.GetAllStatesResponse{ArtifactId: 1, ArtifactRead: true, UserId: "Mike"}, all), "%v", all)
	// The same pair through HTTP: one store behind both APIs.
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"Mike"}`,
		g.get(t, "/artifactState/getAllStates", 1, "Mike").body)
	// A user ID of any script round-trips, and (11, "Mike") is not (1, "1Mike").
	_, err = c.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: "山田 👩‍💻", ArtifactId: 11})
	require.NoError(t, err)
	for _, p := range []struct {
		user string
		id   int64
		want bool
	}{{"山田 👩‍💻", 11, true}, {"1山田 👩‍💻", 1, false}} {
		in, err := c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: p.user, ArtifactId: p.id})
		require.NoError(t, err)
		require.Equal(t, p.want, in.GetAnswer(), p.user)
		require.Equal(t, p.user, in.GetUserId())
	}
}

func grpcV1Calls(t *testing.T, g *grpcStack) {
	c, ctx := g.client, callCtx(t)
	r, err := c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Ann", ArtifactId: 5, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED})
	require.NoError(t, err)
	st := r.GetState()
	require.Equal(t, uint64(1), st.GetVersion())
	require.True(t, st.GetArtifactInUserFeed())
	require.Equal(t, pb.Consistency_CONSISTENCY_STRONG, st.GetConsistency())
	require.NotNil(t, st.GetArtifactInUserFeedChangedAt())
	r, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Ann", ArtifactId: 5, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER})
	require.NoError(t, err)
	require.Equal(t, uint64(2), r.GetState().GetVersion())
	got, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "Ann", ArtifactId: 5})
	require.NoError(t, err)
	require.True(t, proto.Equal(r.GetState(), got.GetState()), "a strong read answers the state the write answered: %v, %v", r, got)

	batch, err := c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Ann", ArtifactId: 5}, {UserId: "Nobody", ArtifactId: 5}}})
	require.NoError(t, err)
	require.Len(t, batch.GetResults(), 2)
	require.True(t, proto.Equal(r.GetState(), batch.GetResults()[0].GetState()))
	require.Equal(t, "Nobody", batch.GetResults()[1].GetState().GetUserId())
	require.Equal(t, uint64(0), batch.GetResults()[1].GetState().GetVersion())

	// No read model in this stack: the calls served from it say so.
	_, err = c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "Ann"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Equal(t, apiwire.ReadModelNotConfigured.Reason, grpcReason(err))
	_, err = c.GetPair(ctx, &pb.GetPairRequest{UserId: "Ann", ArtifactId: 5, Consistency: pb.Consistency_CONSISTENCY_EVENTUAL})
	require.Equal(t, apiwire.ReadModelNotConfigured.Reason, grpcReason(err))
}

// A session of commands and reads on a few pairs answers every request, in
// order, each with its correlation ID, and applies each pair's commands in
// stream order (its reads see the writes sent before them).
func grpcSession(t *testing.T, g *grpcStack) {
	stream, err := g.client.Session(callCtx(t))
	require.NoError(t, err)
	kinds := []pb.CommandKind{pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED,
		pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED}
	type expect struct {
		id      string
		version uint64
		inFeed  bool
		read    bool
	}
	var want []expect
	model := map[string]*workflows.State{}
	sendErr := make(chan error, 1)
	var reqs []*pb.SessionRequest
	for i := range 60 {
		user := fmt.Sprintf("session-%d", i%5)
		m := model[user]
		if m == nil {
			m = &workflows.State{}
			model[user] = m
		}
		id := fmt.Sprintf("req-%d", i)
		if i%2 == 0 {
			kind := kinds[(i/5)%3]
			_, err := m.Apply(map[pb.CommandKind]workflows.CommandKind{
				kinds[0]: workflows.SetArtifactAddedToUserFeed, kinds[1]: workflows.SetArtifactReadByUser, kinds[2]: workflows.SetArtifactRemovedFromUserFeed}[kind], time.Time{})
			require.NoError(t, err)
			reqs = append(reqs, &pb.SessionRequest{CorrelationId: id, Request: &pb.SessionRequest_ApplyCommand{
				ApplyCommand: &pb.ApplyCommandRequest{UserId: user, ArtifactId: 1, Kind: kind}}})
		} else {
			reqs = append(reqs, &pb.SessionRequest{CorrelationId: id, Request: &pb.SessionRequest_GetPair{
				GetPair: &pb.GetPairRequest{UserId: user, ArtifactId: 1}}})
		}
		want = append(want, expect{id, m.Version, m.ArtifactInUserFeed, m.ArtifactRead})
	}
	go func() {
		for _, r := range reqs {
			if err := stream.Send(r); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	for i := 0; ; i++ {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			require.Equal(t, len(want), i, "every request answered")
			break
		}
		require.NoError(t, err)
		require.Less(t, i, len(want))
		require.Equal(t, want[i].id, resp.GetCorrelationId(), "answers in request order")
		require.Nil(t, resp.GetError(), "%s: %v", want[i].id, resp.GetError())
		st := resp.GetApplyCommand().GetState()
		if st == nil {
			st = resp.GetGetPair().GetState()
		}
		require.Equal(t, want[i].version, st.GetVersion(), want[i].id)
		require.Equal(t, want[i].inFeed, st.GetArtifactInUserFeed(), want[i].id)
		require.Equal(t, want[i].read, st.GetArtifactRead(), want[i].id)
	}
	require.NoError(t, <-sendErr)
}

// A write retried with its idempotency key applies once and answers the
// first result, even after another client's write and a continue-as-new.
func grpcIdempotency(t *testing.T, g *grpcStack) {
	c, ctx := g.client, callCtx(t)
	add := &pb.ApplyCommandRequest{UserId: "retry", ArtifactId: 3, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED, IdempotencyKey: "add-3"}
	first, err := c.ApplyCommand(ctx, add)
	require.NoError(t, err)
	again, err := c.ApplyCommand(ctx, add)
	require.NoError(t, err)
	require.True(t, proto.Equal(first, again), "an immediate retry answers the first result")

	_, other := g.dial(t)
	_, err = other.SetArtifactRemovedFromUserFeed(ctx, &pb.SetArtifactRemovedFromUserFeedRequest{UserId: "retry", ArtifactId: 3})
	require.NoError(t, err)
	// Enough writes for the entity to continue as new (MaxHistoryEvents=100).
	k := entityid.Key{UserID: "retry", ArtifactID: 3}
	for i := 0; entityRun(t, g.stack.client, k) < 2; i++ {
		require.Less(t, i, 200, "no continue-as-new after 200 writes")
		_, err := other.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "retry", ArtifactId: 3})
		require.NoError(t, err)
	}
	again, err = c.ApplyCommand(ctx, add)
	require.NoError(t, err)
	require.True(t, proto.Equal(first, again), "the retry after a continue-as-new answers the first result: %v, %v", first, again)
	in, err := c.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: "retry", ArtifactId: 3})
	require.NoError(t, err)
	require.False(t, in.GetAnswer(), "the retry did not put the artifact back after the other client removed it")

	_, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "retry", ArtifactId: 3, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IdempotencyKey: "add-3"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Equal(t, apiwire.IdempotencyKeyReused.Reason, grpcReason(err))
	require.Equal(t, "idempotency_key", grpcField(err))
}

// entityRun is the run number of the pair's entity (1, then one more per
// continue-as-new).
func entityRun(t *testing.T, c client.Client, k entityid.Key) uint64 {
	t.Helper()
	v, err := c.QueryWorkflow(context.Background(), k.WorkflowID(), "", workflows.QueryGetAllStates)
	require.NoError(t, err)
	var st workflows.State
	require.NoError(t, v.Get(&st))
	return st.Run
}

// Two clients write the same pair conditionally on the version both read:
// exactly one wins; the other gets FailedPrecondition with the state the
// winner left.
func grpcConditionalRace(t *testing.T, g *grpcStack) {
	ctx := callCtx(t)
	_, a := g.dial(t)
	_, b := g.dial(t)
	kinds := []pb.CommandKind{pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED, pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED}
	for round := range 6 {
		cur, err := a.GetPair(ctx, &pb.GetPairRequest{UserId: "race", ArtifactId: 1})
		require.NoError(t, err)
		v := cur.GetState().GetVersion()
		// Both clients write the flip of the state they read: each would
		// change it, so each needs version v.
		kind := kinds[round%2]
		var wg sync.WaitGroup
		results := make([]*pb.ApplyCommandResponse, 2)
		errs := make([]error, 2)
		for i, c := range []pb.ArtifactStateServiceClient{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "race", ArtifactId: 1, Kind: kind, IfVersion: &v})
			}()
		}
		wg.Wait()
		winner := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		require.NotEqual(t, -1, winner, "round %d: neither won: %v", round, errs)
		loser := 1 - winner
		require.Equal(t, codes.FailedPrecondition, status.Code(errs[loser]), "round %d: both won", round)
		require.Equal(t, apiwire.VersionMismatch.Reason, grpcReason(errs[loser]))
		require.Equal(t, v+1, results[winner].GetState().GetVersion())
		var current *pb.PairState
		for _, d := range status.Convert(errs[loser]).Details() {
			if s, ok := d.(*pb.PairState); ok {
				current = s
			}
		}
		require.NotNil(t, current, "the loser gets the current state")
		require.Equal(t, results[winner].GetState().GetVersion(), current.GetVersion())
		require.Equal(t, results[winner].GetState().GetArtifactInUserFeed(), current.GetArtifactInUserFeed())
	}
}

// A batch with a pair whose entity cannot run answers the other pairs'
// states and that pair's error.
func grpcBatchErrors(t *testing.T, g *grpcStack) {
	ctx := callCtx(t)
	// A workflow of a type no worker has, under a pair's workflow ID: its
	// first workflow task never completes, so it cannot answer queries.
	broken := entityid.Key{UserID: "broken", ArtifactID: 9}
	_, err := g.stack.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: broken.WorkflowID(), TaskQueue: g.cfg.Temporal.TaskQueue},
		"NotAnArtifactStateEntity")
	require.NoError(t, err)
	_, err = g.client.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "fine", ArtifactId: 9})
	require.NoError(t, err)
	// Temporal refuses its queries once its workflow task has failed.
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		d, err := g.stack.client.DescribeWorkflowExecution(ctx, broken.WorkflowID(), "")
		if err != nil {
			return err
		}
		if a := d.GetPendingWorkflowTask().GetAttempt(); a < 2 {
			return fmt.Errorf("workflow task attempt %d", a)
		}
		return nil
	})
	// A query that reaches the worker while a failing task is being retried
	// waits for it, up to Temporal's own query timeout: give each attempt
	// its own shorter deadline.
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := g.client.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "fine", ArtifactId: 9}, {UserId: "broken", ArtifactId: 9}, {UserId: "never", ArtifactId: 9}}})
		if err != nil {
			return err
		}
		res := r.GetResults()
		if len(res) != 3 || !res[0].GetState().GetArtifactRead() || res[2].GetState() == nil {
			return fmt.Errorf("the readable pairs were not read: %v", res)
		}
		if e := res[1].GetError(); e == nil || e.GetCode() != int32(codes.Unavailable) || e.GetReason() != apiwire.EntityStuck.Reason ||
			res[1].GetUserId() != "broken" {
			return fmt.Errorf("the broken pair answered %v", res[1])
		}
		return nil
	})
	_, err = g.client.GetPair(ctx, &pb.GetPairRequest{UserId: "broken", ArtifactId: 9})
	require.Equal(t, codes.Unavailable, status.Code(err), "alone, the pair gets the same error: %v", err)
}

func grpcBadInput(t *testing.T, g *grpcStack) {
	c, ctx := g.client, callCtx(t)
	_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "Mi\xffke", ArtifactId: 1})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, "user_id", grpcField(err))
	_, err = c.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, "kind", grpcField(err))
	_, err = c.BatchGet(ctx, &pb.BatchGetRequest{Pairs: []*pb.Pair{{UserId: "Mike", ArtifactId: 1}, {ArtifactId: 2}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	require.Equal(t, "pairs[1].user_id", grpcField(err))
	_, err = c.ListRead(ctx, &pb.ListReadRequest{UserId: "Mike", PageSize: 5000})
	require.Equal(t, "page_size", grpcField(err))
}

func grpcHealthAndReflection(t *testing.T, g *grpcStack) {
	ctx := callCtx(t)
	health := healthpb.NewHealthClient(g.conn)
	for _, service := range []string{"", apiwire.ServiceName} {
		testenv.Eventually(t, time.Minute, func(context.Context) error {
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return err
			}
			if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("%q: %v", service, r.GetStatus())
			}
			return nil
		})
	}
	refl, err := reflectionpb.NewServerReflectionClient(g.conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := refl.Recv()
	require.NoError(t, err)
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	require.Contains(t, services, apiwire.ServiceName)
	require.Contains(t, services, "grpc.health.v1.Health")
	require.NoError(t, refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: apiwire.ServiceName}}))
	resp, err = refl.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto(), "the service's descriptor, for grpcurl")
	require.NoError(t, refl.CloseSend())
}

// With Temporal down the gRPC API answers Unavailable with RetryInfo (never
// a false success) and health reports NOT_SERVING; both recover when
// Temporal is back.
func TestGRPCTemporalOutage(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{Persistent: true})
	g := startGRPC(t, startStackOn(t, tt, func(c *config.Config) { c.API.RequestTimeout = 2 * time.Second }))
	ctx := callCtx(t)
	health := healthpb.NewHealthClient(g.conn)
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		testenv.Eventually(t, time.Minute, func(context.Context) error {
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: apiwire.ServiceName})
			if err != nil {
				return err
			}
			if r.GetStatus() != want {
				return fmt.Errorf("health %v, want %v", r.GetStatus(), want)
			}
			return nil
		})
	}
	_, err := g.client.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "Mike", ArtifactId: 9})
	require.NoError(t, err)
	waitHealth(healthpb.HealthCheckResponse_SERVING)

	g.temporal.Stop()
	for name, call := range map[string]func() error{
		"write": func() error {
			_, err := g.client.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: "Mike", ArtifactId: 9})
			return err
		},
		"v1 write": func() error {
			_, err := g.client.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 9, Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED})
			return err
		},
		"read": func() error {
			_, err := g.client.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 9})
			return err
		},
	} {
		err := call()
		require.Equal(t, codes.Unavailable, status.Code(err), "%s: %v", name, err)
		require.Equal(t, apiwire.TemporalUnavailable.Reason, grpcReason(err), name)
		var retry *errdetails.RetryInfo
		for _, d := range status.Convert(err).Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
		require.NotNil(t, retry, name)
		require.Equal(t, time.Second, retry.GetRetryDelay().AsDuration(), name)
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)

	g.temporal.Start()
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		_, err := g.client.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: "Mike", ArtifactId: 9})
		return err
	})
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		r, err := g.client.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: "Mike", ArtifactId: 9})
		if err != nil {
			return err
		}
		if !r.GetArtifactRead() || !r.GetArtifactInUserFeed() {
			return fmt.Errorf("state %v", r)
		}
		return nil
	})
}

// With no worker to run the entities, Temporal cannot answer within the
// request timeout: DeadlineExceeded, and a write's message says to retry it
// with its idempotency key.
func TestGRPCTimeout(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.API.RequestTimeout = 2 * time.Second
	c := testenv.Client(t, cfg, "grpc-timeout-test")
	g := startGRPC(t, &stack{temporal: tt, cfg: cfg, client: c}) // no worker
	ctx := callCtx(t)
	_, err := g.client.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1,
		Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IdempotencyKey: "k1"})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Equal(t, apiwire.TemporalTimeout.Reason, grpcReason(err))
	require.Contains(t, status.Convert(err).Message(), "idempotency_key")
	// The write started the entity: reads of it need a worker too.
	_, err = g.client.GetPair(ctx, &pb.GetPairRequest{UserId: "Mike", ArtifactId: 1})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Equal(t, apiwire.TemporalTimeout.Reason, grpcReason(err))
	// The caller's own shorter deadline holds too.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = g.client.GetPair(short, &pb.GetPairRequest{UserId: "Mike", ArtifactId: 1})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	// The write was kept: a worker applies it once, and the retry with the
	// key answers that result.
	testenv.StartWorker(t, c, cfg, nil)
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		r, err := g.client.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: "Mike", ArtifactId: 1,
			Kind: pb.CommandKind_COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, IdempotencyKey: "k1"})
		if err != nil {
			return err
		}
		if v := r.GetState().GetVersion(); v != 1 {
			return fmt.Errorf("version %d, want 1", v)
		}
		return nil
	})
}

// The read-model calls over gRPC: feed pages with states, the read list,
// eventual reads.
func TestGRPCReadModelCalls(t *testing.T) {
	t.Parallel()
	g := startGRPC(t, startStackWithReadModel(t, testenv.CassandraHosts(t), nil))
	c, ctx := g.client, callCtx(t)
	for i := range 5 {
		_, err := c.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: "reader", ArtifactId: int64(i)})
		require.NoError(t, err)
	}
	_, err := c.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: "reader", ArtifactId: 2})
	require.NoError(t, err)
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		page, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "reader", PageSize: 3, IncludeState: true})
		if err != nil {
			return err
		}
		if !slices.Equal(page.GetArtifactIds(), []int64{0, 1, 2}) || page.GetNextPageToken() == "" || len(page.GetItems()) != 3 ||
			!page.GetItems()[2].GetState().GetArtifactRead() {
			return fmt.Errorf("first page %v", page)
		}
		next, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "reader", PageSize: 3, PageToken: page.GetNextPageToken()})
		if err != nil {
			return err
		}
		if !slices.Equal(next.GetArtifactIds(), []int64{3, 4}) || next.GetNextPageToken() != "" {
			return fmt.Errorf("second page %v", next)
		}
		read, err := c.ListRead(ctx, &pb.ListReadRequest{UserId: "reader"})
		if err != nil {
			return err
		}
		if !slices.Equal(read.GetArtifactIds(), []int64{2}) {
			return fmt.Errorf("read list %v", read)
		}
		ev, err := c.GetPair(ctx, &pb.GetPairRequest{UserId: "reader", ArtifactId: 2, Consistency: pb.Consistency_CONSISTENCY_EVENTUAL})
		if err != nil {
			return err
		}
		if st := ev.GetState(); st.GetConsistency() != pb.Consistency_CONSISTENCY_EVENTUAL || !st.GetArtifactRead() || st.GetChangedAt() == nil {
			return fmt.Errorf("eventual read %v", st)
		}
		return nil
	})
	strong, err := c.ListFeed(ctx, &pb.ListFeedRequest{UserId: "reader", IncludeState: true, Consistency: pb.Consistency_CONSISTENCY_STRONG})
	require.NoError(t, err)
	require.Len(t, strong.GetItems(), 5)
	require.Equal(t, pb.Consistency_CONSISTENCY_STRONG, strong.GetItems()[0].GetState().GetConsistency())
	_, err = c.ListRead(ctx, &pb.ListReadRequest{UserId: "reader", PageToken: "AAAA"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Equal(t, "page_token", grpcField(err))
}
