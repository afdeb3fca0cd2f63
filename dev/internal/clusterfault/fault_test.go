package clusterfault

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/faultload"
	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// Environment of the test.
const (
	// SkipEnv=1 skips it (like every test that needs Cassandra).
	skipEnv = "ARTIFACTSTATE_SKIP_CASSANDRA"
	// ReportEnv names the JSON report file (default: in the temp dir).
	reportEnv = "ARTIFACTSTATE_FAULT_REPORT"
	// KeepEnv=1 keeps the cluster dir (logs, data) even when the test passes.
	keepEnv = "ARTIFACTSTATE_FAULT_KEEP"
	// OnlyEnv names the targets to crash, comma-separated (default: all),
	// e.g. ARTIFACTSTATE_FAULT_ONLY=worker-2 while working on one.
	onlyEnv = "ARTIFACTSTATE_FAULT_ONLY"
	// RingRestartEnv=1 makes the rolling restart restart the Cassandra
	// nodes too (about 2.5 more minutes).
	ringRestartEnv = "ARTIFACTSTATE_FAULT_RING_RESTART"
)

// The load and the faults' timing.
const (
	clients = 8
	// callEvery paces each client: 8 clients, at most 32 calls/s in all.
	callEvery = 250 * time.Millisecond
	// pairsPerFault: each fault gets fresh pairs, so its ledger and
	// history are its own; few enough that clients often meet on one.
	pairsPerFault = 12
	// warmCalls successful calls through each api node before a fault,
	// and again after the restarted process is ready, before the load
	// stops.
	warmCalls = 30
	// downFor is how long a killed process stays dead before the restart.
	downFor = 10 * time.Second
	// frozenFor is how long a frozen process stays stopped.
	frozenFor = 20 * time.Second
	// requestTimeout is the API nodes' api.requestTimeout (the default).
	requestTimeout = 5 * time.Second
)

// fault is one process to crash (SIGKILL, restarted after downFor) or to
// freeze (SIGSTOP for frozenFor, then SIGCONT), or a planned change: a
// rolling restart of every process, a versioned rollout of the workers to a
// new build. Target names it in the report.
type fault struct {
	Name   string
	Target string
	kind   faultKind
	// maxFailing, when set, bounds how long calls may fail (the union of
	// the failed calls' durations).
	maxFailing time.Duration
}

type faultKind int

const (
	kill faultKind = iota
	freeze
	rollingRestart
	rollout
)

// planned reports a change an operator makes on purpose: it must cost no
// failed call.
func (f fault) planned() bool { return f.kind == rollingRestart || f.kind == rollout }

func faults(t *testing.T) []fault {
	all := []fault{
		{Name: "one Cassandra node", Target: localcluster.CassandraName(3)},
		{Name: "one Cassandra node frozen", Target: localcluster.CassandraName(2), kind: freeze},
		{Name: "one history host", Target: localcluster.HistoryName(2)},
		{Name: "one matching host", Target: localcluster.MatchingName(2)},
		// Its entities' tasks move to the other worker within the sticky
		// schedule-to-start timeout (2 s) or the workflow task timeout (3 s):
		// inside a call's 5 s. With Temporal's default task timeout (10 s)
		// calls failed for exactly 10 s.
		{Name: "one worker", Target: localcluster.WorkerName(2), maxFailing: time.Second},
		{Name: "one api node", Target: localcluster.APIName(2)},
		{Name: "a rolling restart of every process", Target: "rolling-restart", kind: rollingRestart},
		// Last: it replaces the workers.
		{Name: "a versioned worker rollout", Target: "rollout", kind: rollout},
	}
	only := os.Getenv(onlyEnv)
	if only == "" {
		return all
	}
	var out []fault
	for _, f := range all {
		if slices.Contains(strings.Split(only, ","), f.Target) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s=%q names none of the targets", onlyEnv, only)
	}
	t.Logf("!!! only these faults, by request (%s): %s !!!", onlyEnv, only)
	return out
}

// Result is what one fault did, as reported in the JSON file.
type Result struct {
	Fault  string `json:"fault"`
	Target string `json:"target"`
	// Seconds from the start of the fault's load.
	KilledAt    float64 `json:"killedAtSeconds"`
	RestartedAt float64 `json:"restartedAtSeconds"`
	ReadyAt     float64 `json:"readyAgainAtSeconds"`
	LoadEnded   float64 `json:"loadEndedAtSeconds"`
	// RestartTook is from the restart to the process being ready again.
	RestartTook float64 `json:"restartTookSeconds"`

	Calls              int `json:"calls"`
	AcknowledgedWrites int `json:"acknowledgedWrites"`
	UnknownWrites      int `json:"unknownOutcomeWrites"`
	// LostWrites: pairs whose final state, read through an api node or
	// from the read model, contradicts an acknowledged write.
	LostWrites  int            `json:"lostWrites"`
	FailedCalls int            `json:"failedCalls"`
	Failures    map[string]int `json:"failuresByReason,omitempty"`
	// Outage is from the start of the first call that failed after the
	// kill to the end of the last one that failed (0: none failed).
	OutageSeconds float64 `json:"outageSeconds"`
	// FailingSeconds is how long at least one call was failing (the
	// union of the failed calls' durations, after the kill), and
	// LongestFailing its longest unbroken stretch.
	FailingSeconds float64 `json:"failingSeconds"`
	LongestFailing float64 `json:"longestFailingSeconds"`
	// FirstFailure and LastFailure are seconds from the load's start.
	FirstFailure float64 `json:"firstFailureAtSeconds,omitempty"`
	LastFailure  float64 `json:"lastFailureAtSeconds,omitempty"`

	// FailedDuringSingleInstanceRestart: of a rolling restart's failed
	// calls, those during the restart of a process the local cluster runs
	// only once (singleInstance).
	FailedDuringSingleInstanceRestart int `json:"failedDuringSingleInstanceRestart,omitempty"`

	Linearizability      string   `json:"linearizability"`
	ReadModelConvergedIn float64  `json:"readModelConvergedSeconds"`
	Violations           []string `json:"violations,omitempty"`
}

// TestFaults brings the cluster up, then crashes and restarts one process
// at a time under load, and checks what the clients saw.
func TestFaults(t *testing.T) {
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("!!! SKIPPED: the fault test runs a Cassandra ring, and %s=1 asked to skip such tests !!!", skipEnv)
	}
	if testing.Short() {
		t.Skip("the fault test takes minutes: not with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 18*time.Minute)
	defer cancel()
	began := time.Now()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	c := upCluster(ctx, t, repo)
	t.Logf("cluster up in %.0fs; api nodes %v", time.Since(began).Seconds(), c.APIURLs())

	nodes := make([]*loadtest.Client, 0, 2)
	for _, u := range c.APIURLs() {
		cl, err := loadtest.NewClient(u, loadtest.ClientOptions{MaxConns: clients, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		nodes = append(nodes, cl)
	}
	run := fmt.Sprintf("%x", rand.Uint32())
	var (
		results []Result
		ledgers []*loadtest.Ledger
	)
	for i, f := range faults(t) {
		r, ledger := runFault(ctx, t, c, nodes, f, run, uint64(i))
		results = append(results, r)
		ledgers = append(ledgers, ledger)
		if ctx.Err() != nil {
			break
		}
	}
	// After every fault: every earlier fault's pairs again, through both
	// nodes (a write may be lost later than the fault it was made in).
	for i, ledger := range ledgers {
		for n, node := range nodes {
			v := loadtest.Verify(ctx, node, ledger, loadtest.VerifyOptions{AssumeFresh: true, SkipReadModel: true})
			if v.Failed() || v.API.Status != loadtest.CheckOK {
				t.Errorf("after all faults, the pairs of %q read through api node %d: %+v", results[i].Fault, n+1, v.API)
			}
		}
	}
	report(t, results)
}

// upCluster builds the binary under test, starts the cluster in a fresh
// directory and stops it when the test ends.
func upCluster(ctx context.Context, t *testing.T, repo string) *localcluster.Cluster {
	dir, err := os.MkdirTemp("", "artifactstate-faults-")
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL runs as its own user when we are root: it must reach dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "artifactstate")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/artifactstate")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the binary: %v\n%s", err, out)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	c, err := localcluster.Open(localcluster.Options{
		Dir:           filepath.Join(dir, "cluster"),
		RepoRoot:      repo,
		BinDir:        filepath.Join(cache, "artifactstate", "localcluster-bin"), // kept between runs: no relink
		Artifactstate: binary,
		NoWebUI:       true,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := c.Down(ctx); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
		if t.Failed() || os.Getenv(keepEnv) == "1" {
			t.Logf("cluster dir kept for a post-mortem: %s (logs in logs/ and cassandra/node-*/logs/)", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	if err := c.Up(ctx); err != nil {
		t.Fatalf("cluster up: %v", err)
	}
	return c
}

// runFault runs load on fresh pairs, kills f.Target once warmCalls calls
// succeeded through each node, restarts it after downFor, lets warmCalls
// more succeed through each node, stops the load and checks everything.
func runFault(ctx context.Context, t *testing.T, c *localcluster.Cluster, nodes []*loadtest.Client, f fault,
	run string, seed uint64) (Result, *loadtest.Ledger) {
	t.Logf("=== fault: %s (%s)", f.Name, f.Target)
	pairs := make([]loadtest.Pair, pairsPerFault)
	for i := range pairs {
		pairs[i] = loadtest.Pair{UserID: fmt.Sprintf("fault-%s-%s-%d", run, strings.ReplaceAll(f.Target, "-", ""), i), ArtifactID: int64(i)}
	}
	// When the target was killed and was ready again (Unix ns, 0: not
	// yet), read by the load's goroutines.
	var killedNs, readyNs atomic.Int64
	killedNode := c.APINode(f.Target)
	l := &faultload.Load{Nodes: nodes, Pairs: pairs, Ledger: loadtest.NewLedger(), Rec: linearizability.NewRecorder(),
		NodeDown: func(node int, began, ended time.Time) bool {
			k, r := killedNs.Load(), readyNs.Load()
			return node == killedNode && k != 0 && ended.UnixNano() >= k && (r == 0 || began.UnixNano() <= r)
		}}
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { l.Run(clients, callEvery, seed, stop); close(loadDone) }()
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-loadDone
	}
	defer stopLoad()

	since := func(t0 time.Time) float64 { return t0.Sub(start).Seconds() }
	r := Result{Fault: f.Name, Target: f.Target}
	if err := l.WaitOK(ctx, start, warmCalls, 2*time.Minute); err != nil {
		t.Fatalf("%s: before the fault: %v", f.Name, err)
	}
	killedAt := time.Now()
	var (
		restarted, readyAt time.Time
		steps              []restartStep // of a rolling restart
	)
	switch f.kind {
	case rollout:
		restarted, readyAt = rolloutWorkers(ctx, t, c, run)
	case rollingRestart:
		restarted, readyAt, steps = restartEveryProcess(ctx, t, c, l)
	case freeze:
		if err := c.Freeze(f.Target); err != nil {
			t.Fatal(err)
		}
		pause(ctx, t, frozenFor)
		restarted = time.Now()
		if err := c.Thaw(f.Target); err != nil {
			t.Fatal(err)
		}
		readyAt = time.Now()
	default:
		killedNs.Store(killedAt.UnixNano())
		if err := c.Kill(f.Target); err != nil {
			t.Fatal(err)
		}
		pause(ctx, t, downFor)
		restarted = time.Now()
		if err := c.Start(ctx, f.Target); err != nil {
			t.Fatalf("%s: restart %s: %v", f.Name, f.Target, err)
		}
		readyAt = time.Now()
	}
	r.KilledAt = since(killedAt)
	r.RestartedAt = since(restarted)
	readyNs.Store(readyAt.UnixNano())
	r.ReadyAt = since(readyAt)
	r.RestartTook = readyAt.Sub(restarted).Seconds()
	if err := l.WaitOK(ctx, readyAt, warmCalls, 2*time.Minute); err != nil {
		t.Errorf("%s: after the restart: %v", f.Name, err)
	}
	stopLoad()
	loadEnded := time.Now()
	r.LoadEnded = since(loadEnded)

	calls := l.Snapshot()
	r.Calls = len(calls)
	r.Failures = map[string]int{}
	var (
		first, last time.Time
		failing     []faultload.Span
	)
	for _, cl := range calls {
		if cl.Acked {
			r.AcknowledgedWrites++
		}
		if cl.Err == nil {
			continue
		}
		if cl.Write && !faultload.NeverSent(cl.Err) {
			r.UnknownWrites++
		}
		r.FailedCalls++
		r.Failures[cl.Reason]++
		if strings.HasPrefix(cl.Reason, "VIOLATION") && len(r.Violations) < 10 {
			r.Violations = append(r.Violations, fmt.Sprintf("%s at %.1fs through api node %d: %s",
				cl.Name(), since(cl.Began), cl.Node+1, cl.Reason))
		}
		if cl.Ended.Before(killedAt) {
			continue
		}
		failing = append(failing, faultload.Span{From: faultload.Later(cl.Began, killedAt), To: cl.Ended})
		if first.IsZero() || cl.Began.Before(first) {
			first = cl.Began
		}
		if cl.Ended.After(last) {
			last = cl.Ended
		}
	}
	if !first.IsZero() {
		r.FirstFailure, r.LastFailure = since(first), since(last)
		r.OutageSeconds = last.Sub(first).Seconds()
		r.FailingSeconds, r.LongestFailing = faultload.Union(failing)
	}
	for _, v := range r.Violations {
		t.Errorf("%s: %s", f.Name, v)
	}
	if f.maxFailing > 0 && r.FailingSeconds > f.maxFailing.Seconds() {
		t.Errorf("%s: calls failed for %.1fs (%d calls: %v), want at most %v", f.Name, r.FailingSeconds, r.FailedCalls, r.Failures, f.maxFailing)
	}
	if f.planned() {
		excused := failedDuring(calls, steps, singleInstance, requestTimeout)
		r.FailedDuringSingleInstanceRestart = len(excused)
		if n := r.FailedCalls - len(excused); n > 0 {
			t.Errorf("%s: %d calls failed (%v; %d of them while a single-instance process %v restarted); a planned change must cost none",
				f.Name, r.FailedCalls, r.Failures, len(excused), singleInstance)
		}
	}

	// Nothing acknowledged lost: through both nodes, then the read model.
	for n, node := range nodes {
		v := loadtest.Verify(ctx, node, l.Ledger, loadtest.VerifyOptions{AssumeFresh: true, SkipReadModel: n > 0,
			LoadEnded: loadEnded, ConvergeTimeout: 2 * time.Minute})
		r.LostWrites = max(r.LostWrites, v.API.Mismatches, v.ReadModel.Mismatches)
		if n == 0 {
			r.ReadModelConvergedIn = v.ReadModel.ConvergedAfterSeconds
		}
		if v.API.Status != loadtest.CheckOK {
			t.Errorf("%s: pairs read through api node %d: %+v", f.Name, n+1, v.API)
		}
		if n == 0 && v.ReadModel.Status != loadtest.CheckOK {
			t.Errorf("%s: read model: %+v", f.Name, v.ReadModel)
		}
	}

	// What the clients saw is linearizable.
	// The visualization of a failure goes beside the cluster dir, which
	// is kept when the test fails.
	lin, err := linearizability.Check(l.Rec.History(), linearizability.Options{Timeout: time.Minute,
		Visualization: filepath.Join(filepath.Dir(c.Dir()), "linearizability-"+f.Target+".html")})
	if err != nil {
		t.Errorf("%s: linearizability check: %v", f.Name, err)
	}
	if lin != nil {
		r.Linearizability = lin.String()
		if !lin.OK() {
			t.Errorf("%s: %s", f.Name, lin)
		}
	}
	t.Logf("%s: restart took %.1fs; %d calls, %d acknowledged writes, %d failed (%v), failing for %.1fs (longest %.1fs) "+
		"within %.1fs from first to last failure, lost writes %d, %s", f.Name, r.RestartTook, r.Calls, r.AcknowledgedWrites,
		r.FailedCalls, r.Failures, r.FailingSeconds, r.LongestFailing, r.OutageSeconds, r.LostWrites, r.Linearizability)
	return r, l.Ledger
}

// pause waits for d: the length of a fault, not a synchronisation.
func pause(ctx context.Context, t *testing.T, d time.Duration) {
	if err := faultload.Sleep(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// report logs the table of faults and writes it as JSON.
func report(t *testing.T, results []Result) {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tRESTART\tCALLS\tACKED WRITES\tLOST\tFAILED\tFAILING (LONGEST)\tFIRST-LAST FAILURE\tREAD MODEL\tLINEARIZABLE")
	for _, r := range results {
		fmt.Fprintf(tw, "%s (%s)\t%.1fs\t%d\t%d\t%d\t%d\t%.1fs (%.1fs)\t%.1fs\t%.1fs\t%t\n", r.Fault, r.Target, r.RestartTook,
			r.Calls, r.AcknowledgedWrites, r.LostWrites, r.FailedCalls, r.FailingSeconds, r.LongestFailing, r.OutageSeconds,
			r.ReadModelConvergedIn, strings.HasSuffix(r.Linearizability, ": linearizable"))
	}
	_ = tw.Flush()
	t.Logf("fault report:\n%s", sb.String())
	path := os.Getenv(reportEnv)
	if path == "" {
		path = filepath.Join(os.TempDir(), "artifactstate-fault-report.json")
	}
	b, err := json.MarshalIndent(map[string]any{"generatedAt": time.Now().UTC(), "faults": results}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Errorf("write the report: %v", err)
		return
	}
	t.Logf("fault report written to %s", path)
}
