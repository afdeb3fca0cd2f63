package privacy

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Exporter rewrites the user IDs of every span (name, attributes, event
// attributes and status) before next exports it; with a nil Redactor it
// returns next.
func Exporter(next sdktrace.SpanExporter, r *Redactor) sdktrace.SpanExporter {
	if r == nil {
		return next
	}
	return &exporter{next: next, r: r}
}

type exporter struct {
	next sdktrace.SpanExporter
	r    *Redactor
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = &span{ReadOnlySpan: s, r: e.r}
	}
	return e.next.ExportSpans(ctx, out)
}

func (e *exporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }

// span is a ReadOnlySpan with its user IDs rewritten.
type span struct {
	sdktrace.ReadOnlySpan
	r *Redactor
}

func (s *span) Name() string { return s.r.Text(s.ReadOnlySpan.Name()) }

func (s *span) Attributes() []attribute.KeyValue { return s.r.attributes(s.ReadOnlySpan.Attributes()) }

func (s *span) Events() []sdktrace.Event {
	events := s.ReadOnlySpan.Events()
	out := make([]sdktrace.Event, len(events))
	for i, ev := range events {
		ev.Name = s.r.Text(ev.Name)
		ev.Attributes = s.r.attributes(ev.Attributes)
		out[i] = ev
	}
	return out
}

func (s *span) Status() sdktrace.Status {
	st := s.ReadOnlySpan.Status()
	st.Description = s.r.Text(st.Description)
	return st
}

func (r *Redactor) attributes(kvs []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		if kv.Value.Type() == attribute.STRING {
			kv.Value = attribute.StringValue(r.Value(string(kv.Key), kv.Value.AsString()))
		}
		out[i] = kv
	}
	return out
}
