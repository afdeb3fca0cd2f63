package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/workflows"
)

// grpcClient makes the Client's calls over the gRPC API: the original
// service's calls (ApplyCommand for a command that has none), and GetPair
// for eventual reads. Each call's failure gets
// the HTTP status the HTTP API answers for the same failure (Result.Status),
// so that reports, retries and the ledger treat both protocols alike.
type grpcClient struct {
	target  string
	conn    *grpc.ClientConn
	api     pb.ArtifactStateServiceClient
	timeout time.Duration
}

// ParseGRPCTarget checks the address of the gRPC API: host:port.
func ParseGRPCTarget(target string) (string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil || host == "" || port == "" || strings.Contains(target, "/") {
		return "", fmt.Errorf("%q must be host:port (the gRPC API, e.g. localhost:8083)", target)
	}
	return target, nil
}

// NewGRPCClient returns a client of the gRPC API at target (host:port,
// plaintext), on one HTTP/2 connection.
func NewGRPCClient(target string, o ClientOptions) (*Client, error) {
	target, err := ParseGRPCTarget(target)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("gRPC client of %s: %w", target, err)
	}
	return &Client{grpc: &grpcClient{target: target, conn: conn, api: pb.NewArtifactStateServiceClient(conn), timeout: o.Timeout}}, nil
}

// CheckGRPCHealth fails unless the gRPC API at target reports SERVING.
func CheckGRPCHealth(ctx context.Context, target string) error {
	c, err := NewGRPCClient(target, ClientOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(c.grpc.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: apiwire.ServiceName})
	if err != nil {
		return fmt.Errorf("the gRPC API at %s does not answer its health check: %w", target, err)
	}
	if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("the gRPC API at %s reports %s", target, r.GetStatus())
	}
	return nil
}

// GRPCError is a failed gRPC call answered by the service.
type GRPCError struct {
	Code codes.Code
	// Reason is the google.rpc.ErrorInfo reason (internal/apiwire).
	Reason string
}

func (e *GRPCError) Error() string { return e.Code.String() + " " + e.Reason }

// result turns a call's error into a Result. A status the service sent
// (it carries an ErrorInfo) gets the HTTP status of its outcome; anything else (a
// refused connection, the client's own deadline) got no answer: Status 0.
func grpcResult(err error, write bool) Result {
	res := Result{Write: write}
	if err == nil {
		return res
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == apiwire.ErrorDomain {
			res.Err = &GRPCError{Code: st.Code(), Reason: info.GetReason()}
			res.Status = http.StatusInternalServerError
			if o, ok := apiwire.ByReason(info.GetReason()); ok {
				res.Status = o.HTTPStatus
			}
			return res
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		res.Err = fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	case codes.Canceled:
		res.Err = fmt.Errorf("%w: %v", context.Canceled, err)
	default:
		res.Err = err
	}
	return res
}

func (g *grpcClient) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

func (g *grpcClient) command(ctx context.Context, kind workflows.CommandKind, p Pair) Result {
	ctx, cancel := g.call(ctx)
	defer cancel()
	var ok bool
	var err error
	switch kind {
	case workflows.SetArtifactReadByUser:
		var r *pb.SetArtifactReadByUserResponse
		r, err = g.api.SetArtifactReadByUser(ctx, &pb.SetArtifactReadByUserRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
		ok = r.GetSuccess()
	case workflows.SetArtifactAddedToUserFeed:
		var r *pb.SetArtifactAddedToUserFeedResponse
		r, err = g.api.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
		ok = r.GetSuccess()
	case workflows.SetArtifactRemovedFromUserFeed:
		var r *pb.SetArtifactRemovedFromUserFeedResponse
		r, err = g.api.SetArtifactRemovedFromUserFeed(ctx, &pb.SetArtifactRemovedFromUserFeedRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
		ok = r.GetSuccess()
	default: // a command of no original call
		v, known := pb.CommandKind_value[apiwire.CommandKindEnum(string(kind))]
		if !known {
			return Result{Write: true, Err: fmt.Errorf("unknown command %q", kind)}
		}
		var r *pb.ApplyCommandResponse
		r, err = g.api.ApplyCommand(ctx, &pb.ApplyCommandRequest{UserId: p.UserID, ArtifactId: p.ArtifactID, Kind: pb.CommandKind(v)})
		ok = r.GetState() != nil
	}
	res := grpcResult(err, true)
	if err == nil {
		if !ok {
			res.Err = fmt.Errorf("%w: %s did not answer success", ErrUnexpectedAnswer, kind)
		} else {
			res.Acked = true
		}
	}
	return res
}

func (g *grpcClient) answer(ctx context.Context, call string, p Pair) (bool, Result) {
	ctx, cancel := g.call(ctx)
	defer cancel()
	var (
		answer     bool
		userID     string
		artifactID int64
		err        error
	)
	switch call {
	case CallIsRead:
		var r *pb.IsArtifactReadByUserResponse
		r, err = g.api.IsArtifactReadByUser(ctx, &pb.IsArtifactReadByUserRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
		answer, userID, artifactID = r.GetAnswer(), r.GetUserId(), r.GetArtifactId()
	case CallIsInFeed:
		var r *pb.IsArtifactInUserFeedResponse
		r, err = g.api.IsArtifactInUserFeed(ctx, &pb.IsArtifactInUserFeedRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
		answer, userID, artifactID = r.GetAnswer(), r.GetUserId(), r.GetArtifactId()
	default:
		return false, Result{Err: fmt.Errorf("unknown call %q", call)}
	}
	res := grpcResult(err, false)
	if err == nil && (userID != p.UserID || artifactID != p.ArtifactID) {
		res.Err = fmt.Errorf("%w: %s answered about another pair", ErrUnexpectedAnswer, call)
	}
	return answer, res
}

func (g *grpcClient) allStates(ctx context.Context, p Pair) (PairState, Result) {
	ctx, cancel := g.call(ctx)
	defer cancel()
	r, err := g.api.GetAllStates(ctx, &pb.GetAllStatesRequest{UserId: p.UserID, ArtifactId: p.ArtifactID})
	res := grpcResult(err, false)
	if err == nil && (r.GetUserId() != p.UserID || r.GetArtifactId() != p.ArtifactID) {
		res.Err = fmt.Errorf("%w: getAllStates answered about another pair", ErrUnexpectedAnswer)
	}
	return PairState{ArtifactRead: r.GetArtifactRead(), ArtifactInUserFeed: r.GetArtifactInUserFeed()}, res
}

func (g *grpcClient) eventual(ctx context.Context, p Pair) (PairState, Result) {
	ctx, cancel := g.call(ctx)
	defer cancel()
	r, err := g.api.GetPair(ctx, &pb.GetPairRequest{UserId: p.UserID, ArtifactId: p.ArtifactID, Consistency: pb.Consistency_CONSISTENCY_EVENTUAL})
	res := grpcResult(err, false)
	st := r.GetState()
	if err == nil && (st.GetUserId() != p.UserID || st.GetArtifactId() != p.ArtifactID || st.GetConsistency() != pb.Consistency_CONSISTENCY_EVENTUAL) {
		res.Err = fmt.Errorf("%w: the eventual read answered about another pair, or not eventually", ErrUnexpectedAnswer)
	}
	return PairState{ArtifactRead: st.GetArtifactRead(), ArtifactInUserFeed: st.GetArtifactInUserFeed()}, res
}

// readModelNotConfigured reports whether err is the gRPC API's answer of a
// read-model call without read model.
func grpcReadModelNotConfigured(err error) bool {
	var ge *GRPCError
	return errors.As(err, &ge) && ge.Reason == apiwire.ReadModelNotConfigured.Reason
}
