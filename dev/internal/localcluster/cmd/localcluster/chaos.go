package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/faultload"
	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// Chaos: the load of the fault test (faultload) through every api node
// while, one at a time, a random process of a replicated role is killed and
// restarted, frozen and thawed, or restarted cleanly; afterwards every
// acknowledged write is read back, the clients' history is checked for
// linearizability, and each fault's failed calls are reported. The single
// instances of the local cluster (the frontend, the internal worker,
// PostgreSQL) are left alone: production replicates them, here they have no
// second to take over.
const (
	chaosClients   = 8
	chaosCallEvery = 250 * time.Millisecond
	chaosPairs     = 200
	// A fault lasts between these; a clean restart as long as it takes.
	chaosMinDown, chaosMaxDown = 5 * time.Second, 20 * time.Second
	// After each fault, chaosSettleCalls calls must succeed through every
	// api node (within chaosSettleWithin) before the next one.
	chaosSettleCalls  = 20
	chaosSettleWithin = 3 * time.Minute
	// Failed calls count against a fault until this long after its process
	// was ready again (api.requestTimeout).
	chaosTail = 5 * time.Second
)

type chaosAction string

const (
	actKill    chaosAction = "kill"
	actFreeze  chaosAction = "freeze"
	actRestart chaosAction = "restart"
)

// chaosFault is one fault of the run, as reported.
type chaosFault struct {
	Target  string      `json:"target"`
	Action  chaosAction `json:"action"`
	AtSec   float64     `json:"atSeconds"`
	DownSec float64     `json:"downSeconds"`
	// ReadyAtSec: when the process answered again.
	ReadyAtSec  float64        `json:"readyAtSeconds"`
	FailedCalls int            `json:"failedCalls"`
	FailingSec  float64        `json:"failingSeconds"`
	Failures    map[string]int `json:"failuresByReason,omitempty"`
	from, to    time.Time
}

type chaosReport struct {
	Duration        string       `json:"duration"`
	Calls           int          `json:"calls"`
	Acknowledged    int          `json:"acknowledgedWrites"`
	FailedCalls     int          `json:"failedCalls"`
	LostWrites      int          `json:"lostWrites"`
	Linearizability string       `json:"linearizability"`
	Violations      []string     `json:"violations,omitempty"`
	Faults          []chaosFault `json:"faults"`
}

// runChaos runs the chaos benchmark for d on the running cluster c and
// writes its report to out (default DIR/chaos/<time>). It fails when a
// write was lost, the history is not linearizable, or a failure broke the
// contract (anything but a 503/504 JSON error, or no answer from a killed
// api node).
func runChaos(ctx context.Context, c *localcluster.Cluster, d time.Duration, seed uint64, out string, log *slog.Logger, stdout io.Writer) error {
	for _, s := range c.Status(ctx) {
		if s.Health != "ok" {
			return fmt.Errorf("%s is not healthy (%s): run `scripts/cluster up` first", s.Name, s.Health)
		}
	}
	if out == "" {
		out = filepath.Join(c.Dir(), "chaos", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var nodes []*loadtest.Client
	for _, u := range c.APIURLs() {
		cl, err := loadtest.NewClient(u, loadtest.ClientOptions{MaxConns: chaosClients, Timeout: 30 * time.Second})
		if err != nil {
			return err
		}
		defer cl.Close()
		nodes = append(nodes, cl)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	run := fmt.Sprintf("%x", rng.Uint32())
	pairs := make([]loadtest.Pair, chaosPairs)
	for i := range pairs {
		pairs[i] = loadtest.Pair{UserID: fmt.Sprintf("chaos-%s-%d", run, i), ArtifactID: int64(i)}
	}
	var (
		mu      sync.Mutex
		apiDown []faultload.Span // per api node index: windows it was killed
		apiNode []int
	)
	l := &faultload.Load{Nodes: nodes, Pairs: pairs, Ledger: loadtest.NewLedger(), Rec: linearizability.NewRecorder(),
		NodeDown: func(node int, began, ended time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			for i, w := range apiDown {
				if apiNode[i] == node && !ended.Before(w.From) && (w.To.IsZero() || !began.After(w.To)) {
					return true
				}
			}
			return false
		}}
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { l.Run(chaosClients, chaosCallEvery, seed, stop); close(loadDone) }()
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-loadDone
	}
	defer stopLoad()
	since := func(t time.Time) float64 { return t.Sub(start).Seconds() }

	targets := chaosTargets(c)
	var faults []chaosFault
	for time.Since(start) < d && ctx.Err() == nil {
		target := targets[rng.IntN(len(targets))]
		action := []chaosAction{actKill, actFreeze, actRestart}[rng.IntN(3)]
		down := chaosMinDown + time.Duration(rng.Int64N(int64(chaosMaxDown-chaosMinDown)))
		node := c.APINode(target)
		log.Info("chaos: fault", "target", target, "action", action, "for", down.Round(time.Second))
		f := chaosFault{Target: target, Action: action, from: time.Now()}
		var err error
		switch action {
		case actKill:
			if node >= 0 {
				mu.Lock()
				apiDown, apiNode = append(apiDown, faultload.Span{From: time.Now()}), append(apiNode, node)
				mu.Unlock()
			}
			if err = c.Kill(target); err == nil {
				err = faultload.Sleep(ctx, down)
			}
			if err == nil {
				err = c.Start(ctx, target)
			}
			if node >= 0 {
				mu.Lock()
				apiDown[len(apiDown)-1].To = time.Now()
				mu.Unlock()
			}
		case actFreeze:
			if err = c.Freeze(target); err == nil {
				err = faultload.Sleep(ctx, down)
				if thawErr := c.Thaw(target); err == nil {
					err = thawErr
				}
			}
		case actRestart:
			if node >= 0 {
				l.TakeOut(node)
			}
			err = c.Restart(ctx, target)
			if node >= 0 {
				l.PutBack(node)
			}
		}
		f.to = time.Now()
		f.AtSec, f.ReadyAtSec, f.DownSec = since(f.from), since(f.to), f.to.Sub(f.from).Seconds()
		faults = append(faults, f)
		if err != nil {
			return fmt.Errorf("%s %s: %w", action, target, err)
		}
		if err := l.WaitOK(ctx, time.Now(), chaosSettleCalls, chaosSettleWithin); err != nil {
			return fmt.Errorf("after %s %s: %w", action, target, err)
		}
	}
	stopLoad()
	loadEnded := time.Now()

	rep := chaosReport{Duration: loadEnded.Sub(start).Round(time.Second).String()}
	calls := l.Snapshot()
	rep.Calls = len(calls)
	for _, cl := range calls {
		if cl.Acked {
			rep.Acknowledged++
		}
		if cl.Err == nil {
			continue
		}
		rep.FailedCalls++
		if strings.HasPrefix(cl.Reason, "VIOLATION") && len(rep.Violations) < 20 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("%s at %.1fs through api node %d: %s", cl.Name(), since(cl.Began), cl.Node+1, cl.Reason))
		}
	}
	for i := range faults {
		f := &faults[i]
		f.Failures = map[string]int{}
		var failing []faultload.Span
		for _, cl := range calls {
			if cl.Err != nil && !cl.Ended.Before(f.from) && !cl.Began.After(f.to.Add(chaosTail)) {
				f.FailedCalls++
				f.Failures[cl.Reason]++
				failing = append(failing, faultload.Span{From: faultload.Later(cl.Began, f.from), To: cl.Ended})
			}
		}
		f.FailingSec, _ = faultload.Union(failing)
	}
	for n, node := range nodes {
		v := loadtest.Verify(ctx, node, l.Ledger, loadtest.VerifyOptions{AssumeFresh: true, SkipReadModel: n > 0, LoadEnded: loadEnded})
		rep.LostWrites = max(rep.LostWrites, v.API.Mismatches, v.ReadModel.Mismatches)
		if v.API.Status != loadtest.CheckOK || (n == 0 && v.ReadModel.Status != loadtest.CheckOK) {
			rep.Violations = append(rep.Violations, fmt.Sprintf("verification through api node %d: API %+v, read model %+v", n+1, v.API, v.ReadModel))
		}
	}
	lin, err := linearizability.Check(l.Rec.History(), linearizability.Options{Timeout: 5 * time.Minute,
		Visualization: filepath.Join(out, "linearizability.html")})
	switch {
	case err != nil:
		rep.Linearizability = "check failed: " + err.Error()
		rep.Violations = append(rep.Violations, rep.Linearizability)
	case lin != nil:
		rep.Linearizability = lin.String()
		if !lin.OK() {
			rep.Violations = append(rep.Violations, lin.String())
		}
	}
	rep.Faults = faults
	printChaos(stdout, rep)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(out, "report.json"))
	if len(rep.Violations) > 0 || rep.LostWrites > 0 {
		return fmt.Errorf("%d lost writes, %d violations (first: %s)", rep.LostWrites, len(rep.Violations), first(rep.Violations))
	}
	return nil
}

// chaosTargets are the processes of replicated roles.
func chaosTargets(c *localcluster.Cluster) []string {
	var out []string
	for _, name := range c.Components() {
		switch {
		case strings.HasPrefix(name, "cassandra-"), strings.HasPrefix(name, "temporal-history-"),
			strings.HasPrefix(name, "temporal-matching-"), strings.HasPrefix(name, "worker-"), strings.HasPrefix(name, "api-"):
			out = append(out, name)
		}
	}
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return s[0]
}

func printChaos(w io.Writer, r chaosReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tTARGET\tACTION\tDOWN\tFAILED CALLS\tFAILING FOR\tBY REASON")
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "%.0fs\t%s\t%s\t%.1fs\t%d\t%.1fs\t%v\n", f.AtSec, f.Target, f.Action, f.DownSec, f.FailedCalls, f.FailingSec, f.Failures)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%s: %d calls, %d acknowledged writes, %d failed calls, %d lost writes; %s\n",
		r.Duration, r.Calls, r.Acknowledged, r.FailedCalls, r.LostWrites, r.Linearizability)
	for _, v := range r.Violations {
		fmt.Fprintln(w, "VIOLATION:", v)
	}
}
