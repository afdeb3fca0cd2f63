package multiprocess

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
)

// `artifactstate dev` is the whole system in one process: API, worker,
// embedded Temporal frontend (the temporal CLI's port) and Web UI; SIGINT
// (Ctrl-C) stops it cleanly with exit status 0. Metrics and pprof are on
// the admin listener, not the API port; every listener binds loopback.
func TestDevRoleServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	api, admin, frontend, ui := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	p := start(t, "dev", "dev", []string{
		// Every interface asked for: dev binds loopback all the same.
		"ARTIFACTSTATE_API_LISTEN_ADDRESS=:" + strconv.Itoa(api),
		"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=:" + strconv.Itoa(admin),
		"ARTIFACTSTATE_DEV_FRONTEND_PORT=" + strconv.Itoa(frontend),
		"ARTIFACTSTATE_DEV_UI_PORT=" + strconv.Itoa(ui),
		"ARTIFACTSTATE_DEV_DATA_DIR=" + t.TempDir(),
		"ARTIFACTSTATE_ADMIN_PPROF=true",
	}, api)
	for _, want := range []string{"address=http://127.0.0.1:" + strconv.Itoa(api) + " ",
		"address=http://127.0.0.1:" + strconv.Itoa(admin) + " "} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("the start-up log lacks %q:\n%s", want, p.output())
		}
	}
	adminURL := "http://127.0.0.1:" + strconv.Itoa(admin)
	r, err := call("POST", p.url+"/artifactState/setArtifactAddedToUserFeed", pair(3, "dev-user"))
	if err != nil || r.body != `{"success":true}` {
		t.Fatalf("write: %d %q %v", r.status, r.body, err)
	}
	r, err = call("GET", p.url+"/artifactState/isArtifactInUserFeed"+query(3, "dev-user"), "")
	if err != nil || r.body != `{"answer":true,"artifactId":3,"userId":"dev-user"}` {
		t.Fatalf("read: %d %q %v", r.status, r.body, err)
	}
	for _, url := range []string{"http://127.0.0.1:" + strconv.Itoa(ui) + "/", adminURL + "/metrics", adminURL + "/debug/pprof/"} {
		r, err := call("GET", url, "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, r.status, err)
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if r, err := call("GET", p.url+path, ""); err != nil || r.status != http.StatusNotFound {
			t.Fatalf("GET %s on the API port: %d %v, want 404", path, r.status, err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of SIGINT")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("dev exited with %d:\n%s", code, p.output())
	}
	for _, want := range []string{"API stopped", "Worker stopped", "Temporal server stopped"} {
		if !strings.Contains(p.output(), want) {
			t.Errorf("the shutdown log lacks %q", want)
		}
	}
}

// Bad configuration stops a role before it dials anything, naming every
// problem.
func TestBadConfigurationIsReportedAtStart(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "worker")
	cmd.Env = []string{
		"ARTIFACTSTATE_TEMPORAL_ADDRESS=no-port",
		"ARTIFACTSTATE_WORKER_MAX_HISTORY_EVENTS=5",
		"ARTIFACTSTATE_CASSANDRA_CONSISTENCY=SOMETIMES",
	}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1:\n%s", code, err, out)
	}
	for _, want := range []string{"invalid configuration", "temporal.address", "worker.maxHistoryEvents", "cassandra.consistency"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cmd = exec.Command(binary, "api")
	cmd.Env = []string{"ARTIFACTSTATE_API_REQUEST_TIMEOUT=soon"}
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "ARTIFACTSTATE_API_REQUEST_TIMEOUT") {
		t.Errorf("the bad variable is not named:\n%s", out)
	}
}

// The replay corpus can be regenerated with the binary, and the binary's
// pre-deploy check replays both files and a running deployment's entities.
func TestRecordHistoriesAndReplay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, err := exec.Command(binary, "record-histories", "--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("record-histories: %v\n%s", err, out)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	if err != nil || len(files) < 15 {
		t.Fatalf("recorded %d files (%v), want every scenario", len(files), err)
	}
	args := []string{"replay"}
	for _, f := range files {
		args = append(args, "--file", f)
	}
	out, err = exec.Command(binary, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d of %d histories replay", len(files), len(files))) {
		t.Fatalf("replay of the fresh corpus: %v\n%s", err, out)
	}

	// Live: the open entities of a running system.
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	c := testenv.Client(t, cfg, "replay-test")
	testenv.StartWorker(t, c, cfg, nil)
	api := testenv.StartAPI(t, c, cfg, nil)
	for i := range 5 {
		if r, err := call("POST", api.URL+"/artifactState/setArtifactAddedToUserFeed", pair(int64(i), "live")); err != nil || r.status != http.StatusOK {
			t.Fatalf("write: %d %v", r.status, err)
		}
	}
	cmd := exec.Command(binary, "replay", "--temporal-address", tt.Address, "--namespace", testenv.Namespace)
	testenv.Eventually(t, time.Minute, func(context.Context) error { // visibility lists new runs a moment later
		out, err := cmd.CombinedOutput()
		cmd = exec.Command(binary, "replay", "--temporal-address", tt.Address, "--namespace", testenv.Namespace)
		if err != nil || !strings.Contains(string(out), "5 of 5 histories replay") {
			return fmt.Errorf("replay of the live entities: %v\n%s", err, out)
		}
		return nil
	})
}
