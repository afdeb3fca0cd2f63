package multiprocess

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
)

// The dev role serves the gRPC API on grpc.listenAddress beside the HTTP
// API, on the same entities; on SIGTERM it ends its long-lived streams (a
// health watch, an open session) instead of waiting for them, and exits 0.
func TestDevRoleServesGRPCAndStopsCleanly(t *testing.T) {
	t.Parallel()
	api, grpcPort, frontend := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	p := start(t, "dev-grpc", "dev", []string{
		"ARTIFACTSTATE_API_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(api),
		"ARTIFACTSTATE_GRPC_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(grpcPort),
		"ARTIFACTSTATE_DEV_FRONTEND_PORT=" + strconv.Itoa(frontend),
		"ARTIFACTSTATE_DEV_UI_PORT=0",
		"ARTIFACTSTATE_DEV_IN_MEMORY=true",
	}, api)
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(grpcPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	health := healthpb.NewHealthClient(conn)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: apiwire.ServiceName})
		if err != nil {
			return err
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", r.GetStatus())
		}
		return nil
	})
	c := pb.NewArtifactStateServiceClient(conn)
	if _, err := c.SetArtifactAddedToUserFeed(ctx, &pb.SetArtifactAddedToUserFeedRequest{UserId: "grpc-user", ArtifactId: 4}); err != nil {
		t.Fatal(err)
	}
	r, err := call("GET", p.url+"/artifactState/isArtifactInUserFeed"+query(4, "grpc-user"), "")
	if err != nil || r.body != `{"answer":true,"artifactId":4,"userId":"grpc-user"}` {
		t.Fatalf("the HTTP API does not see the gRPC write: %d %q %v", r.status, r.body, err)
	}

	watch, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: apiwire.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	session, err := c.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Send(&pb.SessionRequest{CorrelationId: "1", Request: &pb.SessionRequest_GetPair{
		GetPair: &pb.GetPairRequest{UserId: "grpc-user", ArtifactId: 4}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := session.Recv(); err != nil || !resp.GetGetPair().GetState().GetArtifactInUserFeed() {
		t.Fatalf("session: %v %v", resp, err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := watch.Recv(); err != nil {
			break // NOT_SERVING, then the end of the stream
		}
	}
	if _, err := session.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("the open session ended with %v, want Unavailable", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("dev exited with %d:\n%s", code, p.output())
	}
	for _, want := range []string{"gRPC API listening", "gRPC API stopped", "API stopped"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(p.output(), "still running at the end of the shutdown timeout") {
		t.Error("the gRPC server waited for its shutdown timeout")
	}
}
