package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// SessionConcurrency is how many requests of one Session stream may be
// unanswered at once (running, or done and waiting for an earlier one's
// answer). A stream with that many is not read further until the oldest is
// answered; gRPC flow control then holds the client back.
const SessionConcurrency = 16

// errStopping ends the Session streams of a stopping server.
var errStopping = status.Error(codes.Unavailable,
	"the server is stopping: every request read was answered; requests without an answer were not applied, send them on a new stream")

// Session answers each request of the stream in order. Requests run
// concurrently except those on the same pair, which run one after the other
// in stream order. When the server stops, the session answers every
// request it has started and ends with Unavailable.
func (s *service) Session(stream pb.ArtifactStateService_SessionServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	sess := &session{service: s, stream: stream,
		slots:   make(chan struct{}, SessionConcurrency),
		answers: make(chan chan *pb.SessionResponse, SessionConcurrency),
		last:    map[entityid.Key]chan struct{}{}}
	readErr := make(chan error, 1)
	go func() {
		readErr <- sess.read(ctx)
		close(sess.answers)
	}()
	for {
		select {
		case answer, open := <-sess.answers:
			if !open {
				return <-readErr
			}
			if err := sess.send(ctx, answer); err != nil {
				return err
			}
		case <-s.stopping:
			sess.mu.Lock()
			sess.stopped = true // the reader starts no more requests
			sess.mu.Unlock()
			for {
				select {
				case answer, open := <-sess.answers:
					if !open {
						return errStopping
					}
					if err := sess.send(ctx, answer); err != nil {
						return err
					}
				default: // no request left unanswered
					return errStopping
				}
			}
		}
	}
}

// session is one Session stream.
type session struct {
	*service
	stream pb.ArtifactStateService_SessionServer
	// slots holds one token per unanswered request; answers holds, in
	// request order, where each one's answer will be (a token held means
	// room in answers).
	slots   chan struct{}
	answers chan chan *pb.SessionResponse
	// last is, per pair, the done channel of its latest request (the
	// reader's own).
	last map[entityid.Key]chan struct{}

	mu      sync.Mutex
	stopped bool
}

// send sends the answer of the oldest request and frees its slot.
func (sess *session) send(ctx context.Context, answer chan *pb.SessionResponse) error {
	select {
	case resp := <-answer:
		<-sess.slots
		return sess.stream.Send(resp)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read reads requests until the client closes its side, starting each
// one's work and queueing where its answer will be.
func (sess *session) read(ctx context.Context) error {
	for {
		req, err := sess.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case sess.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !sess.start(ctx, req) {
			<-sess.slots
			return errStopping
		}
	}
}

// start queues req's answer and starts its work, unless the server is
// stopping.
func (sess *session) start(ctx context.Context, req *pb.SessionRequest) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.stopped {
		return false
	}
	answer := make(chan *pb.SessionResponse, 1)
	sess.answers <- answer // never blocks: this request holds a slot
	k, keyed := sessionKey(req)
	var prev, done chan struct{}
	if keyed {
		prev, done = sess.last[k], make(chan struct{})
		sess.last[k] = done
		if len(sess.last) > 4*SessionConcurrency {
			forgetFinished(sess.last)
		}
	}
	go func() {
		if done != nil {
			defer close(done)
		}
		if prev != nil {
			select {
			case <-prev:
			case <-ctx.Done():
			}
		}
		answer <- sess.answer(ctx, req)
	}()
	return true
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

// answer runs one request of a session.
func (s *service) answer(ctx context.Context, req *pb.SessionRequest) (resp *pb.SessionResponse) {
	resp = &pb.SessionResponse{CorrelationId: req.GetCorrelationId()}
	defer func() {
		if p := recover(); p != nil {
			s.logger.ErrorContext(ctx, "Session request panicked", "panic", p, "stack", string(debug.Stack()))
			resp.Response = &pb.SessionResponse_Error{Error: outcome(apiwire.Internal, "internal error").proto()}
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
