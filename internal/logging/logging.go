// Package logging builds the process's structured logger (log/slog).
package logging

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/artifactstate/artifactstate/internal/config"
)

// New returns a logger writing to w at cfg.Level, in cfg.Format or, when that
// is empty, in defaultFormat ("json" or "text").
func New(cfg config.Log, defaultFormat string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	format := cfg.Format
	if format == "" {
		format = defaultFormat
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(traceHandler{slog.NewJSONHandler(w, opts)}), nil
	case "text":
		return slog.New(traceHandler{slog.NewTextHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("log.format: must be json or text, got %q", format)
}
