package privacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

func hashing(t *testing.T) *Redactor {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("k", 32)+"\n"), 0o600))
	r, err := New(config.Privacy{UserIDs: "hash", HashKeyFile: path})
	require.NoError(t, err)
	return r
}

// The user IDs of the tests, as they appear raw.
var secrets = []string{"Mike Smith", "Mike%20Smith", "Mike/Smith", "Mike%2FSmith", "山田", "%E5%B1%B1%E7%94%B0"}

func requireNoUserID(t *testing.T, s string) {
	t.Helper()
	for _, secret := range secrets {
		require.NotContains(t, s, secret)
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := hashing(t)
	mike, err := entityid.New("Mike Smith", 7)
	require.NoError(t, err)
	h := r.UserID("Mike Smith")
	require.Regexp(t, `^u:[0-9a-f]{16}$`, h)
	require.Equal(t, h, r.UserID("Mike Smith"), "the same user always hashes the same")
	require.NotEqual(t, h, r.UserID("Mike Smitt"))
	require.Equal(t, "artifactstate/7/"+h, r.WorkflowID(mike.WorkflowID()))
	require.Equal(t, "signal artifactstate/7/"+h+": workflow busy", r.Text("signal "+mike.WorkflowID()+": workflow busy"))
	require.Equal(t, "GET /v1/users/"+h+"/feed", r.Text("GET /v1/users/Mike%20Smith/feed"))
	yamada, err := entityid.New("山田", -1)
	require.NoError(t, err)
	require.Equal(t, "artifactstate/-1/"+r.UserID("山田"), r.Text(yamada.WorkflowID()))
	slash, err := entityid.New("Mike/Smith", 1)
	require.NoError(t, err)
	requireNoUserID(t, r.Text(`failed "`+slash.WorkflowID()+`"`))
	require.Equal(t, "artifact 42 of nobody", r.Text("artifact 42 of nobody"))

	other := hashing(t)
	require.Equal(t, other.UserID("x"), r.UserID("x"), "one key, one hash")

	drop, err := New(config.Privacy{UserIDs: "drop"})
	require.NoError(t, err)
	require.Equal(t, "artifactstate/7/"+Dropped, drop.WorkflowID(mike.WorkflowID()))

	raw, err := New(config.Privacy{UserIDs: "raw"})
	require.NoError(t, err)
	require.Nil(t, raw)
	require.Equal(t, mike.WorkflowID(), raw.WorkflowID(mike.WorkflowID()))

	short := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(short, []byte("tiny"), 0o600))
	_, err = New(config.Privacy{UserIDs: "hash", HashKeyFile: short})
	require.ErrorContains(t, err, "at least 32 bytes")
}

func TestLogsCarryNoUserID(t *testing.T) {
	t.Parallel()
	r := hashing(t)
	var buf bytes.Buffer
	logger := slog.New(Handler(slog.NewJSONHandler(&buf, nil), r))
	mike, err := entityid.New("Mike Smith", 7)
	require.NoError(t, err)
	logger.With("WorkflowID", mike.WorkflowID()).Info("Re-creating "+mike.WorkflowID(),
		"userId", "Mike Smith",
		"path", "/v1/users/Mike%20Smith/artifacts/7",
		"error", fmt.Errorf("query %s: %w", mike.WorkflowID(), errors.New("busy")),
		slog.Group("req", "userId", "Mike Smith"),
		"artifactId", 7)
	out := buf.String()
	requireNoUserID(t, out)
	h := r.UserID("Mike Smith")
	require.Contains(t, out, `"WorkflowID":"artifactstate/7/`+h+`"`)
	require.Contains(t, out, `"userId":"`+h+`"`)
	require.Contains(t, out, `"path":"/v1/users/`+h+`/artifacts/7"`)
	require.Contains(t, out, `"artifactId":7`)

	// raw: the handler is not even installed.
	var plain bytes.Buffer
	inner := slog.NewJSONHandler(&plain, nil)
	require.Equal(t, slog.Handler(inner), Handler(inner, nil))
}

func TestSpansCarryNoUserID(t *testing.T) {
	t.Parallel()
	r := hashing(t)
	mem := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(Exporter(mem, r)))
	mike, err := entityid.New("Mike Smith", 7)
	require.NoError(t, err)
	_, span := provider.Tracer("t").Start(context.Background(), "SignalWithStartWorkflow:"+mike.WorkflowID())
	span.SetAttributes(attribute.String("temporalWorkflowID", mike.WorkflowID()),
		attribute.String("url.path", "/v1/users/Mike%20Smith/feed"), attribute.Int("n", 1))
	span.RecordError(fmt.Errorf("signal %s failed", mike.WorkflowID()))
	span.SetStatus(codes.Error, "entity "+mike.WorkflowID())
	span.End()
	require.NoError(t, provider.ForceFlush(context.Background()))
	spans := mem.GetSpans()
	require.Len(t, spans, 1)
	requireNoUserID(t, fmt.Sprintf("%s %v %v %v", spans[0].Name, spans[0].Attributes, spans[0].Events, spans[0].Status))
	require.Contains(t, spans[0].Name, r.UserID("Mike Smith"))
}
