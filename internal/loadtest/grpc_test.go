package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/grpcapi"
)

// startGRPC serves the real gRPC API on m (and rm, if not nil) on a free
// loopback port and returns its address.
func startGRPC(t *testing.T, m *memoryEntities, rm *memoryReadModel) string {
	t.Helper()
	d := grpcapi.Deps{Pairs: service(m, rm), Logger: slog.New(slog.DiscardHandler)}
	srv, err := grpcapi.New(grpcapi.Options{RequestTimeout: 5 * time.Second, RetryAfter: time.Second}, d)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	return ln.Addr().String()
}

func newGRPCClient(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := NewGRPCClient(addr, ClientOptions{Timeout: 10 * time.Second})
	require.NoError(t, err)
	c.Ledger = NewLedger()
	t.Cleanup(c.Close)
	return c
}

func TestGatlingScenarioOverGRPC(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	addr := startGRPC(t, m, &memoryReadModel{entities: m})
	require.NoError(t, CheckGRPCHealth(context.Background(), addr))
	c := newGRPCClient(t, addr)
	require.Equal(t, "grpc", c.Protocol())
	require.Equal(t, addr, c.Target())
	rep := runGatling(t, c, 30, 0, 11)
	require.Zero(t, rep.Total.Errors, "%+v", rep.Total.ErrorsByMessage)
	require.Equal(t, 180, rep.Total.Count)
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true, PollInterval: 10 * time.Millisecond})
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, CheckOK, v.ReadModel.Status, "%+v", v.ReadModel)
	require.Positive(t, v.Pairs)
	require.Positive(t, m.Len(), "the writes reached the store")
}

func TestClosedModelOverGRPC(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	c := newGRPCClient(t, startGRPC(t, m, &memoryReadModel{entities: m}))
	mixer := NewMixer(c, Mix{Write: 50, Strong: 30, Eventual: 20}, UserNames(DefaultNames(), 3), 4, 8, 7)
	rep := RunClosed(context.Background(), 8, 300*time.Millisecond, mixer.Next)
	require.Zero(t, rep.Total.Errors, "%+v", rep.Total.ErrorsByMessage)
	for _, call := range []string{CallSetRead, CallAddToFeed, CallRemoveFromFeed, CallGetAllStates, CallEventual} {
		require.Positive(t, rep.Call(call).Count, call)
	}
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, CheckOK, v.ReadModel.Status, "%+v", v.ReadModel)
}

// A store that loses a write is caught over gRPC as over HTTP.
func TestVerificationCatchesALostWriteOverGRPC(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	m.loseRead = true
	c := newGRPCClient(t, startGRPC(t, m, &memoryReadModel{entities: m}))
	rep := runGatling(t, c, 20, 0, 3)
	lost := m.lost()
	require.NotEmpty(t, lost.UserID)
	require.Positive(t, rep.Call(CallIsRead).ErrorsByMessage[ErrReadYourWrites.Error()])
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{ConvergeTimeout: time.Second, PollInterval: 10 * time.Millisecond})
	require.Equal(t, CheckFailed, v.API.Status)
	require.Equal(t, []Mismatch{{UserID: lost.UserID, ArtifactID: lost.ArtifactID, Want: "read=true inFeed=false", Got: "read=false inFeed=false"}}, v.API.Examples)
}

// Failures get the HTTP API's status for the same failure, so retries,
// reports and the ledger treat them alike.
func TestGRPCErrorsAreCountedByTheirHTTPStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err          error
		status       int
		message      string
		nonRetriable bool
	}{
		{fmt.Errorf("%w: overloaded", entities.ErrUnavailable), 503, "Unavailable TEMPORAL_UNAVAILABLE", false},
		{fmt.Errorf("%w: slow", entities.ErrTimeout), 504, "DeadlineExceeded TEMPORAL_TIMEOUT", false},
		{errors.New("boom"), 500, "Internal INTERNAL", true},
	} {
		m := newMemoryEntities()
		m.FailWith(tc.err)
		c := newGRPCClient(t, startGRPC(t, m, nil))
		rep := runGatling(t, c, 3, 0, 5)
		require.Equal(t, 18, rep.Total.Errors)
		require.Equal(t, map[int]int{tc.status: 18}, rep.Total.ErrorsByStatus)
		require.Equal(t, 3, rep.Call(CallSetRead).ErrorsByMessage[tc.message], "%v", rep.Call(CallSetRead).ErrorsByMessage)
		require.Equal(t, tc.nonRetriable, rep.Failed(), tc.message)
		v := Verify(context.Background(), c, c.Ledger, VerifyOptions{})
		require.Zero(t, v.Pairs, "nothing was acknowledged")
		require.Equal(t, 9, v.UnknownWrites)
	}

	// Without a read model, the eventual read says so.
	c := newGRPCClient(t, startGRPC(t, newMemoryEntities(), nil))
	_, res := c.Eventual(context.Background(), Pair{UserID: "Mike", ArtifactID: 1})
	require.True(t, ReadModelNotConfigured(res.Err), "%v", res.Err)

	// No server at all: no answer (status 0), non-retriable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c = newGRPCClient(t, addr)
	rep := runGatling(t, c, 2, 0, 6)
	require.Equal(t, map[int]int{0: 12}, rep.Total.ErrorsByStatus)
	require.True(t, rep.Failed())
	require.Error(t, CheckGRPCHealth(context.Background(), addr))
}

func TestGRPCTargets(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"localhost:8083", "127.0.0.1:1", "[::1]:8083"} {
		_, err := ParseGRPCTarget(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "localhost", "http://localhost:8083", ":8083", "localhost:"} {
		_, err := ParseGRPCTarget(bad)
		require.Error(t, err, bad)
	}
}
