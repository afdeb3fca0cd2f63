package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/artifactstate/artifactstate/internal/config"
)

func TestLogsCarryTheTraceID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := New(config.Log{Level: "info"}, "json", &buf)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled})
	logger.With("WorkflowID", "artifactstate/1/Mike").InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "hello")
	logger.InfoContext(context.Background(), "no span")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.NoError(t, json.Unmarshal(lines[1], &second))
	require.Equal(t, sc.TraceID().String(), first["trace_id"])
	require.Equal(t, sc.SpanID().String(), first["span_id"])
	require.Equal(t, "artifactstate/1/Mike", first["WorkflowID"])
	require.NotContains(t, second, "trace_id")
}

func TestFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := New(config.Log{Level: "debug", Format: "text"}, "json", &buf)
	require.NoError(t, err)
	logger.Debug("x", "k", "v")
	require.Contains(t, buf.String(), "level=DEBUG msg=x k=v")
	_, err = New(config.Log{Level: "loud"}, "json", &buf)
	require.Error(t, err)
	_, err = New(config.Log{Level: "info", Format: "xml"}, "json", &buf)
	require.Error(t, err)
}
