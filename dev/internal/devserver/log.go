package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts slog to the Temporal server's logger interface.
// While quiet is set it drops everything: a starting server logs errors about
// peer services that are not up yet, a quiet one about those already gone;
// a real start-up failure is returned by Start anyway.
type serverLogger struct {
	logger *slog.Logger
	level  slog.Level
	quiet  *atomic.Bool
}

func newServerLogger(l *slog.Logger, level slog.Level, quiet *atomic.Bool) log.Logger {
	return &serverLogger{logger: l.With("component", "temporal-server"), level: level, quiet: quiet}
}

func (l *serverLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	if level < l.level || l.quiet.Load() || !l.logger.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 2*len(tags))
	for _, t := range tags {
		attrs = append(attrs, t.Key(), t.Value())
	}
	l.logger.Log(context.Background(), level, msg, attrs...)
}

func (l *serverLogger) Debug(msg string, tags ...tag.Tag)  { l.log(slog.LevelDebug, msg, tags) }
func (l *serverLogger) Info(msg string, tags ...tag.Tag)   { l.log(slog.LevelInfo, msg, tags) }
func (l *serverLogger) Warn(msg string, tags ...tag.Tag)   { l.log(slog.LevelWarn, msg, tags) }
func (l *serverLogger) Error(msg string, tags ...tag.Tag)  { l.log(slog.LevelError, msg, tags) }
func (l *serverLogger) DPanic(msg string, tags ...tag.Tag) { l.log(slog.LevelError, msg, tags) }
func (l *serverLogger) Panic(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic(fatalError(msg, tags))
}
func (l *serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.log(slog.LevelError, msg, tags)
	panic(fatalError(msg, tags))
}

// fatalError is a Fatal or Panic log line as the panic's value: the message
// with its tags (the cause, say "bind: address already in use", is a tag).
func fatalError(msg string, tags []tag.Tag) error {
	var b strings.Builder
	b.WriteString(msg)
	for _, t := range tags {
		fmt.Fprintf(&b, " %s=%v", t.Key(), t.Value())
	}
	return errors.New(b.String())
}

// With keeps tags across calls, as the server expects of its loggers.
func (l *serverLogger) With(tags ...tag.Tag) log.Logger {
	attrs := make([]any, 0, 2*len(tags))
	for _, t := range tags {
		attrs = append(attrs, t.Key(), t.Value())
	}
	return &serverLogger{logger: l.logger.With(attrs...), level: l.level, quiet: l.quiet}
}
