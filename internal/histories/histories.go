// Package histories saves, loads and replays entity workflow histories: the
// replay corpus in replaytests/testdata, and the pre-deploy check that
// replays a running deployment's histories against the current code.
package histories

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/worker"
	"github.com/artifactstate/artifactstate/workflows"
)

// Save writes h as JSON in the format of `temporal workflow show --output
// json`, gzipped when path ends in .gz.
func Save(path string, h *history.History) error {
	raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if strings.HasSuffix(path, ".gz") {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		raw = buf.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// Load reads a history written by Save (or by the temporal CLI).
func Load(path string) (*history.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	h, err := client.HistoryFromJSON(r, client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// NewReplayer returns a replayer with the production workflow code
// registered exactly as the worker registers it.
func NewReplayer() sdkworker.WorkflowReplayer {
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r, workflows.Options{})
	return r
}

// NewReplayerWith is NewReplayer decoding payloads with dc (the converter
// the histories were written with: payload encryption); nil is the SDK's
// default.
func NewReplayerWith(dc converter.DataConverter) (sdkworker.WorkflowReplayer, error) {
	if dc == nil {
		return NewReplayer(), nil
	}
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
		DataConverter: dc, FailureConverter: payloadcrypt.FailureConverter(dc)})
	if err != nil {
		return nil, fmt.Errorf("replayer: %w", err)
	}
	worker.RegisterWorkflows(r, workflows.Options{})
	return r, nil
}

// Replay replays h with r; an error means the code is not compatible with
// the history (non-determinism) or the code failed.
func Replay(r sdkworker.WorkflowReplayer, logger *slog.Logger, h *history.History) error {
	return r.ReplayWorkflowHistory(sdklog.NewStructuredLogger(logger), h)
}
