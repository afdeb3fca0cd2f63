package grpcapi

import (
	"context"
	"errors"
	"strconv"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
)

// FanOut applies one command to the artifact's pair of every user listed
// (pairs.Service.FanOut), with the HTTP API's validation and outcomes.
func (s *service) FanOut(ctx context.Context, r *pb.FanOutRequest) (*pb.FanOutResponse, error) {
	resp, err := s.fanOut(ctx, r)
	return answer(s, ctx, resp, err, true)
}

func (s *service) fanOut(ctx context.Context, r *pb.FanOutRequest) (*pb.FanOutResponse, error) {
	keys, cmd, err := s.fanOutRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	results, err := s.pairs.FanOut(ctx, keys, cmd)
	if err != nil {
		return nil, err
	}
	resp := &pb.FanOutResponse{ArtifactId: r.GetArtifactId(), Kind: r.GetKind(), Results: make([]*pb.PairResult, len(results))}
	for i, res := range results {
		item := &pb.PairResult{UserId: keys[i].UserID, ArtifactId: keys[i].ArtifactID}
		if res.Err != nil {
			item.Result = &pb.PairResult_Error{Error: s.classify(ctx, res.Err, true).proto()}
			resp.Failed++
		} else {
			item.Result = &pb.PairResult_State{State: statePB(res.State)}
			resp.Applied++
		}
		resp.Results[i] = item
	}
	return resp, nil
}

// fanOutRequest validates a fan-out and checks that the caller may use
// every pair it names, before anything is applied.
func (s *service) fanOutRequest(ctx context.Context, r *pb.FanOutRequest) ([]entityid.Key, entities.Command, error) {
	var cmd entities.Command
	var err error
	if cmd.Kind, err = commandKind("kind", r.GetKind()); err != nil {
		return nil, cmd, err
	}
	keys, err := s.pairs.FanOutKeys(r.GetArtifactId(), r.GetUserIds())
	var listErr *pairs.UserListError
	if errors.As(err, &listErr) {
		field := "user_ids"
		if listErr.Index >= 0 {
			field += "[" + strconv.Itoa(listErr.Index) + "]"
		}
		return nil, cmd, invalid(field, "%s", listErr.Reason)
	}
	if err != nil {
		return nil, cmd, err
	}
	if cmd.IdempotencyKey, err = idempotencyKey("idempotency_key", r.GetIdempotencyKey()); err != nil {
		return nil, cmd, err
	}
	for _, k := range keys {
		if err := s.allowed(ctx, k.UserID); err != nil {
			return nil, cmd, err
		}
	}
	return keys, cmd, nil
}
