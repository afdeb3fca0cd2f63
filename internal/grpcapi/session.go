package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"google.golang.org/grpc/codes"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// SessionConcurrency is how many requests of one Session stream the server
// works on at once. A stream that has this many requests unanswered is not
// read further until the oldest is answered (gRPC flow control then holds
// the client back).
const SessionConcurrency = 16

// Session answers each request of the stream in order. Requests run
// concurrently (SessionConcurrency at most) except those on the same pair,
// which run one after the other in stream order.
func (s *service) Session(stream pb.ArtifactStateService_SessionServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// answers holds, in request order, where each request's answer will
	// be; its capacity and slots bound the requests in flight.
	answers := make(chan chan *pb.SessionResponse, SessionConcurrency)
	readErr := make(chan error, 1)
	go func() {
		readErr <- s.readSession(ctx, stream, answers)
		close(answers)
	}()
	for answer := range answers {
		var resp *pb.SessionResponse
		select {
		case resp = <-answer:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return <-readErr
}

// readSession reads requests until the client closes its side, starting
// each one's work and queueing where its answer will be.
func (s *service) readSession(ctx context.Context, stream pb.ArtifactStateService_SessionServer, answers chan<- chan *pb.SessionResponse) error {
	slots := make(chan struct{}, SessionConcurrency)
	// last is, per pair, the done channel of its latest request.
	last := map[entityid.Key]chan struct{}{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		answer := make(chan *pb.SessionResponse, 1)
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case answers <- answer:
		case <-ctx.Done():
			return ctx.Err()
		}
		k, keyed := sessionKey(req)
		var prev, done chan struct{}
		if keyed {
			prev, done = last[k], make(chan struct{})
			last[k] = done
			if len(last) > 4*SessionConcurrency {
				forgetFinished(last)
			}
		}
		go func() {
			defer func() { <-slots }()
			if done != nil {
				defer close(done)
			}
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done():
				}
			}
			answer <- s.sessionAnswer(ctx, req)
		}()
	}
}

// forgetFinished drops the pairs whose latest request has finished.
func forgetFinished(last map[entityid.Key]chan struct{}) {
	for k, done := range last {
		select {
		case <-done:
			delete(last, k)
		default:
		}
	}
}

// sessionKey is the pair a request names, if it names a valid one.
func sessionKey(req *pb.SessionRequest) (entityid.Key, bool) {
	var k entityid.Key
	var err error
	switch r := req.GetRequest().(type) {
	case *pb.SessionRequest_ApplyCommand:
		k, err = entityid.New(r.ApplyCommand.GetUserId(), r.ApplyCommand.GetArtifactId())
	case *pb.SessionRequest_GetPair:
		k, err = entityid.New(r.GetPair.GetUserId(), r.GetPair.GetArtifactId())
	default:
		return k, false
	}
	return k, err == nil
}

// sessionAnswer runs one request of a session.
func (s *service) sessionAnswer(ctx context.Context, req *pb.SessionRequest) (resp *pb.SessionResponse) {
	resp = &pb.SessionResponse{CorrelationId: req.GetCorrelationId()}
	defer func() {
		if p := recover(); p != nil {
			s.logger.ErrorContext(ctx, "Session request panicked", "panic", p, "stack", string(debug.Stack()))
			resp.Response = &pb.SessionResponse_Error{Error: (&failure{code: codes.Internal, reason: ReasonInternal, message: "internal error"}).proto()}
		}
	}()
	fail := func(err error, write bool) *pb.SessionResponse {
		resp.Response = &pb.SessionResponse_Error{Error: s.classify(ctx, err, write).proto()}
		return resp
	}
	if err := correlationID(req.GetCorrelationId()); err != nil {
		return fail(err, false)
	}
	switch r := req.GetRequest().(type) {
	case *pb.SessionRequest_ApplyCommand:
		answer, err := s.applyCommand(ctx, "apply_command.", r.ApplyCommand)
		if err != nil {
			return fail(err, true)
		}
		resp.Response = &pb.SessionResponse_ApplyCommand{ApplyCommand: answer}
	case *pb.SessionRequest_GetPair:
		answer, err := s.getPair(ctx, "get_pair.", r.GetPair)
		if err != nil {
			return fail(err, false)
		}
		resp.Response = &pb.SessionResponse_GetPair{GetPair: answer}
	case nil:
		return fail(invalid("request", "must be apply_command or get_pair, got neither"), false)
	default:
		return fail(fmt.Errorf("unknown session request %T", r), false)
	}
	return resp
}
