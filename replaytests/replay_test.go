package replaytests

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/workflows"
)

// corpus lists the recorded histories: every file in testdata is picked up.
func corpus(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories in testdata: run `make record-histories`")
	}
	return files
}

func logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestCorpusReplays replays every recorded history against the current
// workflow code, registered exactly as the worker registers it.
func TestCorpusReplays(t *testing.T) {
	t.Parallel()
	replayer := histories.NewReplayer()
	for _, file := range corpus(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json.gz"), func(t *testing.T) {
			h, err := histories.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := histories.Replay(replayer, logger(), h); err != nil {
				t.Fatalf("the current code cannot replay %s: %v\nSee docs/workflow-versioning.md.", file, err)
			}
		})
	}
}

// scenarios are the files every history version recorded: the scenarios of
// internal/histories/record when that version shipped (runs of one chain
// are -run<N>). A version keeps its files forever.
var scenarios = map[int][]string{
	1: {"set-read", "add-to-feed", "remove-from-feed", "all-commands", "repeated-commands", "no-read-model",
		"never-written", "batched-commands", "continue-as-new-run1", "continue-as-new-run2", "continue-as-new-run3",
		"continue-as-new-run4", "projection-retried", "projection-rejected", "cancel-ignored",
		"terminated-recreated-run1", "terminated-recreated-run2"},
}

func init() {
	scenarios[2] = scenarios[1]
	scenarios[3] = append(slices.Clone(slices.DeleteFunc(slices.Clone(scenarios[1]), func(s string) bool {
		return s == "continue-as-new-run4" // updates fill a run faster: three runs
	})),
		"signalled-commands", "idempotent-retry-run1", "idempotent-retry-run2", "conditional-write",
		"rejected-pause-continue-as-new-run1", "rejected-pause-continue-as-new-run2")
	scenarios[4] = scenarios[3]
	scenarios[5] = append(slices.Clone(scenarios[4]),
		"forced-projection-carried-run1", "forced-projection-carried-run2", "upgrade-requested-run1", "upgrade-requested-run2",
		"unversioned-all-commands", "unversioned-continue-as-new-run1", "unversioned-continue-as-new-run2")
}

// TestCorpusHoldsEveryVersionAndPath guards the corpus itself: every file
// of every version that shipped is there, and nothing else.
func TestCorpusHoldsEveryVersionAndPath(t *testing.T) {
	t.Parallel()
	want := map[string]bool{}
	for v := 1; v <= workflows.HistoryVersion; v++ {
		if len(scenarios[v]) == 0 {
			t.Fatalf("history version %d has no scenarios listed here: list the files it recorded", v)
		}
		for _, scenario := range scenarios[v] {
			want[filepath.Join("testdata", fmt.Sprintf("v%d-%s.json.gz", v, scenario))] = true
		}
	}
	have := map[string]bool{}
	for _, file := range corpus(t) {
		have[file] = true
		if !want[file] {
			t.Errorf("%s is in the corpus but not listed in scenarios: list it", file)
		}
	}
	for file := range want {
		if !have[file] {
			t.Errorf("the corpus lacks %s (record it with `make record-histories`)", file)
		}
	}
}

// nonDeterministicEntity is the entity workflow with a timer added in
// front: a change that alters the commands of every history, as a careless
// edit would. The corpus must catch it.
func nonDeterministicEntity(ctx workflow.Context, in workflows.EntityInput) error {
	if err := workflow.Sleep(ctx, time.Minute); err != nil {
		return err
	}
	return workflows.NewEntity(workflows.Options{}).Run(ctx, in)
}

// TestNonDeterministicChangeFailsReplay proves the harness bites: the
// altered workflow must fail to replay every history.
func TestNonDeterministicChangeFailsReplay(t *testing.T) {
	t.Parallel()
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(nonDeterministicEntity, workflow.RegisterOptions{Name: workflows.EntityWorkflowName})
	for _, file := range corpus(t) {
		h, err := histories.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := histories.Replay(replayer, logger(), h); err == nil {
			t.Errorf("%s replayed on a non-deterministic variant of the workflow: the replay test would not catch a breaking change", file)
		}
	}
}

// TestEncryptedCorpusReplays replays histories recorded with payload
// encryption on (temporal.encryption.keysFile) with the codec, as
// `artifactstate replay` does when the keys are configured; without the
// keys they cannot replay, so the payloads really are ciphertext.
func TestEncryptedCorpusReplays(t *testing.T) {
	t.Parallel()
	codec, err := payloadcrypt.Load(filepath.Join("testdata", "encrypted", "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	replayer, err := histories.NewReplayerWith(payloadcrypt.DataConverter(codec))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "encrypted", "*.json.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no encrypted histories (%v): run `make record-histories`", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json.gz"), func(t *testing.T) {
			h, err := histories.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			if enc := string(start.GetMetadata()["encoding"]); enc != payloadcrypt.EncodingEncrypted {
				t.Fatalf("%s: the start input is %q, not encrypted", file, enc)
			}
			if err := histories.Replay(replayer, logger(), h); err != nil {
				t.Fatalf("the current code cannot replay %s with its keys: %v", file, err)
			}
			if err := histories.Replay(histories.NewReplayer(), logger(), h); err == nil {
				t.Errorf("%s replayed without the keys: its payloads are not encrypted", file)
			}
		})
	}
}

// TestVersionedRunsRecordNoVersionMarkers pins what history version 5 saves
// per run: a run of a versioned worker records its history version in its
// options and no version marker (each marker is two events and a visibility
// update), while a run of an unversioned worker records the markers of
// version 4, which a version-4 build in the same rolling deploy replays.
func TestVersionedRunsRecordNoVersionMarkers(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "v5-*.json.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no version-5 histories (%v)", err)
	}
	for _, file := range files {
		h, err := histories.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		markers := 0
		for _, ev := range h.GetEvents() {
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
				markers++
			}
		}
		unversioned := strings.Contains(file, "unversioned")
		switch {
		case unversioned && markers != 3:
			t.Errorf("%s: %d version markers, want version 4's 3", file, markers)
		case !unversioned && markers != 0:
			t.Errorf("%s: %d version markers, want none", file, markers)
		}
	}
}

// productionCorpus lists the production-shaped histories by history
// version: testdata/production/v<N>, recorded from the release that shipped
// version N (replaytests/releases.txt) and from this code for the newest, by
// `make record-production-histories`.
func productionCorpus(t *testing.T) map[int][]string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "production", "v*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]string{}
	for _, dir := range dirs {
		v, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "v"))
		if err != nil {
			t.Fatalf("%s: not a history version directory", dir)
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.json.gz"))
		if err != nil {
			t.Fatal(err)
		}
		out[v] = files
	}
	return out
}

// productionShapes are the entities every release could make (later ones
// add idempotency keys and If-Match).
var productionShapes = []string{"read", "add", "remove", "all-commands", "repeated", "escaped", "chain-run1", "chain-run2",
	"paused-projection", "terminated", "recreated-run1", "recreated-run2"}

// TestProductionCorpusReplays replays every production-shaped history
// against this code, with the corpus's key (payloads are encrypted from
// the release that had payload encryption on). Unlike the scenario corpus,
// these runs carry what production sets at start: the search attributes
// (from history version 3) and encrypted payloads; a rule that reads them
// at replay is exercised here.
func TestProductionCorpusReplays(t *testing.T) {
	t.Parallel()
	codec, err := payloadcrypt.Load(filepath.Join("testdata", "production", "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	replayer, err := histories.NewReplayerWith(payloadcrypt.DataConverter(codec))
	if err != nil {
		t.Fatal(err)
	}
	corpus := productionCorpus(t)
	for v := 1; v <= workflows.HistoryVersion; v++ {
		files := corpus[v]
		have := map[string]bool{}
		for _, f := range files {
			have[strings.TrimSuffix(filepath.Base(f), ".json.gz")] = true
		}
		for _, shape := range productionShapes {
			if !have[shape] {
				t.Errorf("testdata/production/v%d lacks %s: run `make record-production-histories`", v, shape)
			}
		}
		for _, file := range files {
			t.Run(fmt.Sprintf("v%d/%s", v, strings.TrimSuffix(filepath.Base(file), ".json.gz")), func(t *testing.T) {
				h, err := histories.Load(file)
				if err != nil {
					t.Fatal(err)
				}
				start := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
				if _, ok := start.GetSearchAttributes().GetIndexedFields()[workflows.SearchAttributeUserID.GetName()]; v >= 3 && !ok {
					t.Errorf("a history of version %d without the search attributes production sets", v)
				}
				if err := histories.Replay(replayer, logger(), h); err != nil {
					t.Fatalf("the current code cannot replay %s: %v\nSee docs/workflow-versioning.md.", file, err)
				}
			})
		}
	}
}
