package grpcapi

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// service implements pb.ArtifactStateServiceServer on the application
// service (internal/pairs), as the HTTP API (package server) does. Its
// handlers return plain errors, mapped to statuses by classify (errors.go)
// once per call.
type service struct {
	pb.UnimplementedArtifactStateServiceServer
	opts      Options
	pairs     *pairs.Service
	failures  apierror.Classifier
	authorize Authorizer
	logger    *slog.Logger
	// stopping is closed when the server starts to stop (Server.Stop).
	stopping chan struct{}
}

// answer returns resp, or err as the status classify maps it to.
func answer[T any](s *service, ctx context.Context, resp T, err error, write bool) (T, error) {
	if err != nil {
		var zero T
		return zero, s.classify(ctx, err, write).err()
	}
	return resp, nil
}

// pair validates the pair a request names and checks that the caller may
// use it; prefix is the path of the message holding it.
func (s *service) pair(ctx context.Context, prefix, userID string, artifactID int64) (entityid.Key, error) {
	k, err := key(prefix, userID, artifactID)
	if err != nil {
		return k, err
	}
	return k, s.allowed(ctx, userID)
}

// allowed asks the Authorizer, if any, whether the caller may use the
// pairs of userID.
func (s *service) allowed(ctx context.Context, userID string) error {
	if s.authorize == nil {
		return nil
	}
	if err := s.authorize(ctx, userID); err != nil {
		return &authError{err: err}
	}
	return nil
}

// --- The original service's calls.

func (s *service) SetArtifactReadByUser(ctx context.Context, r *pb.SetArtifactReadByUserRequest) (*pb.SetArtifactReadByUserResponse, error) {
	err := s.command(ctx, workflows.SetArtifactReadByUser, r.GetUserId(), r.GetArtifactId(), r.GetIdempotencyKey())
	return answer(s, ctx, &pb.SetArtifactReadByUserResponse{Success: true}, err, true)
}

func (s *service) SetArtifactAddedToUserFeed(ctx context.Context, r *pb.SetArtifactAddedToUserFeedRequest) (*pb.SetArtifactAddedToUserFeedResponse, error) {
	err := s.command(ctx, workflows.SetArtifactAddedToUserFeed, r.GetUserId(), r.GetArtifactId(), r.GetIdempotencyKey())
	return answer(s, ctx, &pb.SetArtifactAddedToUserFeedResponse{Success: true}, err, true)
}

func (s *service) SetArtifactRemovedFromUserFeed(ctx context.Context, r *pb.SetArtifactRemovedFromUserFeedRequest) (*pb.SetArtifactRemovedFromUserFeedResponse, error) {
	err := s.command(ctx, workflows.SetArtifactRemovedFromUserFeed, r.GetUserId(), r.GetArtifactId(), r.GetIdempotencyKey())
	return answer(s, ctx, &pb.SetArtifactRemovedFromUserFeedResponse{Success: true}, err, true)
}

// command applies one command of the original calls.
func (s *service) command(ctx context.Context, kind workflows.CommandKind, userID string, artifactID int64, idempotency string) error {
	k, err := s.pair(ctx, "", userID, artifactID)
	if err != nil {
		return err
	}
	cmd := entities.Command{Kind: kind}
	if cmd.IdempotencyKey, err = idempotencyKey("idempotency_key", idempotency); err != nil {
		return err
	}
	_, err = s.pairs.Apply(ctx, k, cmd)
	return err
}

func (s *service) IsArtifactReadByUser(ctx context.Context, r *pb.IsArtifactReadByUserRequest) (*pb.IsArtifactReadByUserResponse, error) {
	st, err := s.strong(ctx, r.GetUserId(), r.GetArtifactId())
	return answer(s, ctx, &pb.IsArtifactReadByUserResponse{Answer: st.ArtifactRead, ArtifactId: st.Key.ArtifactID, UserId: st.Key.UserID}, err, false)
}

func (s *service) IsArtifactInUserFeed(ctx context.Context, r *pb.IsArtifactInUserFeedRequest) (*pb.IsArtifactInUserFeedResponse, error) {
	st, err := s.strong(ctx, r.GetUserId(), r.GetArtifactId())
	return answer(s, ctx, &pb.IsArtifactInUserFeedResponse{Answer: st.ArtifactInUserFeed, ArtifactId: st.Key.ArtifactID, UserId: st.Key.UserID}, err, false)
}

func (s *service) GetAllStates(ctx context.Context, r *pb.GetAllStatesRequest) (*pb.GetAllStatesResponse, error) {
	st, err := s.strong(ctx, r.GetUserId(), r.GetArtifactId())
	return answer(s, ctx, &pb.GetAllStatesResponse{ArtifactId: st.Key.ArtifactID, ArtifactInUserFeed: st.ArtifactInUserFeed,
		ArtifactRead: st.ArtifactRead, UserId: st.Key.UserID}, err, false)
}

// strong reads a pair of the original calls from its entity.
func (s *service) strong(ctx context.Context, userID string, artifactID int64) (pairs.State, error) {
	k, err := s.pair(ctx, "", userID, artifactID)
	if err != nil {
		return pairs.State{}, err
	}
	return s.pairs.Get(ctx, k, pairs.Strong)
}

// --- The v1 calls.

func (s *service) ApplyCommand(ctx context.Context, r *pb.ApplyCommandRequest) (*pb.ApplyCommandResponse, error) {
	resp, err := s.applyCommand(ctx, "", r)
	return answer(s, ctx, resp, err, true)
}

// applyCommand is ApplyCommand for a call or a session; prefix is the path
// of r in the request.
func (s *service) applyCommand(ctx context.Context, prefix string, r *pb.ApplyCommandRequest) (*pb.ApplyCommandResponse, error) {
	k, err := s.pair(ctx, prefix, r.GetUserId(), r.GetArtifactId())
	if err != nil {
		return nil, err
	}
	cmd := entities.Command{}
	if cmd.Kind, err = commandKind(prefix+"kind", r.GetKind()); err != nil {
		return nil, err
	}
	if cmd.IdempotencyKey, err = idempotencyKey(prefix+"idempotency_key", r.GetIdempotencyKey()); err != nil {
		return nil, err
	}
	if r.IfVersion != nil {
		v := r.GetIfVersion()
		cmd.IfVersion = &v
	}
	st, err := s.pairs.Apply(ctx, k, cmd)
	if err != nil {
		return nil, err
	}
	return &pb.ApplyCommandResponse{State: statePB(st)}, nil
}

func (s *service) GetPair(ctx context.Context, r *pb.GetPairRequest) (*pb.GetPairResponse, error) {
	resp, err := s.getPair(ctx, "", r)
	return answer(s, ctx, resp, err, false)
}

func (s *service) getPair(ctx context.Context, prefix string, r *pb.GetPairRequest) (*pb.GetPairResponse, error) {
	k, err := s.pair(ctx, prefix, r.GetUserId(), r.GetArtifactId())
	if err != nil {
		return nil, err
	}
	c, err := consistency(prefix+"consistency", r.GetConsistency(), pairs.Strong)
	if err != nil {
		return nil, err
	}
	st, err := s.pairs.Get(ctx, k, c)
	if err != nil {
		return nil, err
	}
	return &pb.GetPairResponse{State: statePB(st)}, nil
}

func (s *service) BatchGet(ctx context.Context, r *pb.BatchGetRequest) (*pb.BatchGetResponse, error) {
	resp, err := s.batchGet(ctx, r)
	return answer(s, ctx, resp, err, false)
}

func (s *service) batchGet(ctx context.Context, r *pb.BatchGetRequest) (*pb.BatchGetResponse, error) {
	c, err := consistency("consistency", r.GetConsistency(), pairs.Strong)
	if err != nil {
		return nil, err
	}
	if n := len(r.GetPairs()); n == 0 || n > pairs.MaxBatch {
		return nil, invalid("pairs", "must hold 1 to %d pairs, got %d", pairs.MaxBatch, n)
	}
	keys := make([]entityid.Key, len(r.GetPairs()))
	for i, p := range r.GetPairs() {
		if keys[i], err = s.pair(ctx, "pairs["+strconv.Itoa(i)+"].", p.GetUserId(), p.GetArtifactId()); err != nil {
			return nil, err
		}
	}
	results, err := s.pairs.BatchGet(ctx, keys, c)
	if err != nil {
		return nil, err
	}
	return &pb.BatchGetResponse{Results: s.results(ctx, results)}, nil
}

// results renders each result; an error as the one the pair would have got
// on its own.
func (s *service) results(ctx context.Context, results []pairs.Result) []*pb.PairResult {
	out := make([]*pb.PairResult, len(results))
	for i, r := range results {
		item := &pb.PairResult{UserId: r.State.Key.UserID, ArtifactId: r.State.Key.ArtifactID}
		if r.Err != nil {
			item.Result = &pb.PairResult_Error{Error: s.classify(ctx, r.Err, false).proto()}
		} else {
			item.Result = &pb.PairResult_State{State: statePB(r.State)}
		}
		out[i] = item
	}
	return out
}

func (s *service) ListFeed(ctx context.Context, r *pb.ListFeedRequest) (*pb.ListFeedResponse, error) {
	resp, err := s.listFeed(ctx, r)
	return answer(s, ctx, resp, err, false)
}

func (s *service) listFeed(ctx context.Context, r *pb.ListFeedRequest) (*pb.ListFeedResponse, error) {
	if err := userID("", r.GetUserId()); err != nil {
		return nil, err
	}
	largest := pairs.MaxPageSize
	if r.GetIncludeState() {
		largest = pairs.MaxPageSizeWithState
	}
	size, err := pageSize("page_size", r.GetPageSize(), largest)
	if err != nil {
		return nil, err
	}
	c, err := consistency("consistency", r.GetConsistency(), pairs.Eventual)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(ctx, r.GetUserId()); err != nil {
		return nil, err
	}
	page, err := s.pairs.Feed(ctx, r.GetUserId(), size, r.GetPageToken(), r.GetIncludeState(), c)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListFeedResponse{UserId: r.GetUserId(), ArtifactIds: page.ArtifactIDs, NextPageToken: page.Next}
	if r.GetIncludeState() {
		resp.Items = s.results(ctx, page.States)
	}
	return resp, nil
}

func (s *service) ListRead(ctx context.Context, r *pb.ListReadRequest) (*pb.ListReadResponse, error) {
	resp, err := s.listRead(ctx, r)
	return answer(s, ctx, resp, err, false)
}

func (s *service) listRead(ctx context.Context, r *pb.ListReadRequest) (*pb.ListReadResponse, error) {
	if err := userID("", r.GetUserId()); err != nil {
		return nil, err
	}
	size, err := pageSize("page_size", r.GetPageSize(), pairs.MaxPageSize)
	if err != nil {
		return nil, err
	}
	if err := s.allowed(ctx, r.GetUserId()); err != nil {
		return nil, err
	}
	page, err := s.pairs.ReadArtifacts(ctx, r.GetUserId(), size, r.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &pb.ListReadResponse{UserId: r.GetUserId(), ArtifactIds: page.ArtifactIDs, NextPageToken: page.Next}, nil
}

// statePB is a pair's state as the API answers it.
func statePB(st pairs.State) *pb.PairState {
	c := pb.Consistency_CONSISTENCY_STRONG
	if st.Consistency == pairs.Eventual {
		c = pb.Consistency_CONSISTENCY_EVENTUAL
	}
	return &pb.PairState{UserId: st.Key.UserID, ArtifactId: st.Key.ArtifactID, ArtifactRead: st.ArtifactRead,
		ArtifactInUserFeed: st.ArtifactInUserFeed, Version: st.Version, Consistency: c,
		ChangedAt: timestamp(st.ChangedAt), ArtifactReadChangedAt: timestamp(st.ArtifactReadChangedAt),
		ArtifactInUserFeedChangedAt: timestamp(st.ArtifactInUserFeedChangedAt)}
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
