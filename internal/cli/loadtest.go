package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// verifyConcurrency is how many reads the verification runs at once.
const verifyConcurrency = 32

type loadtestFlags struct {
	target, protocol, scenario, namesFile string
	mix, out                              string
	users, artifacts, pairs, concurrency  int
	maxInFlight, readers, writers         int
	followers, batch                      int
	ramp, duration, requestTimeout        time.Duration
	convergeTimeout, progress, linTimeout time.Duration
	rate                                  float64
	seed                                  uint64
	noVerify, assumeFresh                 bool
}

var loadtestScenarios = []string{"gatling", "closed", "open", "newpairs", "hotpair", "fanout"}

// fanoutRequestTimeout is the fan-out scenario's default bound on each
// call: the service's default api.fanoutTimeout (60s) and some.
const fanoutRequestTimeout = 70 * time.Second

// Which scenario each scenario-specific flag belongs to.
var loadtestFlagScenarios = map[string][]string{
	"ramp":                    {"gatling"},
	"users":                   {"gatling", "closed", "open"},
	"artifacts":               {"gatling", "closed", "open", "fanout"},
	"pairs":                   {"closed", "open", "newpairs"},
	"concurrency":             {"closed", "newpairs", "fanout"},
	"duration":                {"closed", "open", "hotpair"},
	"mix":                     {"closed", "open"},
	"rate":                    {"open"},
	"max-in-flight":           {"open"},
	"readers":                 {"hotpair"},
	"writers":                 {"hotpair"},
	"linearizability-timeout": {"hotpair"},
	"followers":               {"fanout"},
	"batch":                   {"fanout"},
}

func newLoadtestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load the HTTP API, report latency and throughput, verify every acknowledged write",
		Long: `Generates load on the API at --target and reports, per call, the throughput, the
p50/p90/p99/max latency of the successful calls and the errors by status; then checks that
every acknowledged write is reflected in the final state, through the API's strong read and
through the read model (Cassandra) once the projection converged.

Scenarios:
  gatling   the original Gatling scenario: --users virtual users (default 1000) started evenly
            over --ramp (default 5m); each takes a random name and artifact ID in [0, --artifacts)
            and calls setArtifactReadByUser, isArtifactReadByUser, setArtifactAddedToUserFeed,
            isArtifactInUserFeed, setArtifactRemovedFromUserFeed and getAllStates in turn.
  closed    maximum throughput: --concurrency workers (default 16) call back to back for
            --duration.
  open      constant arrival rate: --rate calls per second for --duration, never waiting for
            answers; arrivals finding --max-in-flight calls running are dropped and counted.
  newpairs  read after write on new pairs: --pairs pairs never written before (default 200),
            --concurrency clients (default 32); each POSTs setArtifactAddedToUserFeed for its
            pair and, once that answers {"success":true}, isArtifactInUserFeed for the same pair,
            which must answer true. Reports failed reads by status and wrong answers; fails on
            any failed write, failed read or wrong answer.
  hotpair   one new pair, --readers clients (default 16) calling getAllStates,
            isArtifactInUserFeed and isArtifactReadByUser in turn and --writers clients (default
            4) sending the three commands in turn, back to back for --duration (default 30s).
            Fails on any error (no call may answer other than 200) or if the history of every
            call's invocation, response and answer is not linearizable (porcupine; the
            visualization of a failure goes to --out/linearizability.html).
  fanout    publish an artifact to N followers: for each of --artifacts artifacts (default 1),
            POST /v1/artifacts/{id}/fanout setArtifactAddedToUserFeed for --followers new users
            (default 10000) in calls of --batch users (default 1000), --concurrency calls at once
            (default 1: the service runs 32 items of a call at once), each with an
            Idempotency-Key. Shows a progress bar; reports pairs/s, the calls' latency, each
            pair's share of its call's latency, and failed items by reason; fails on any failed
            item or call. The verification then reads every follower's pair, which must be in
            the feed. --request-timeout defaults to 70s (the service's api.fanoutTimeout is 60s).

closed and open draw calls by --mix (relative weights): write = one of the three commands,
strong = getAllStates (GET and POST alternately), eventual = GET
/v1/users/{userId}/artifacts/{artifactId}?consistency=eventual; on pairs drawn from --users
names x [0, --artifacts), or from --pairs N pairs (user i mod U, artifact i div U, U = --users).

The summary goes to stdout (and, with --out DIR, report.txt, report.json and report.html with
latency-over-time charts). Ctrl-C stops the load and still verifies and reports; a second
Ctrl-C skips the verification. The exit code is non-zero when a call failed with a status
other than 503/504 (or without an answer, other than a timeout), a check of the scenario failed
or the verification failed. newpairs and hotpair write new pairs, so the verification also
checks that flags never set are false (as --assume-fresh).

--protocol grpc drives the gRPC API instead (--target host:port, default localhost:8083): the
same scenarios and verification through its original calls (SetArtifactReadByUser, ...,
GetAllStates), GetPair for eventual reads and FanOut; failures are reported by the HTTP status the REST
API answers for the same failure (503 for UNAVAILABLE, 504 for DEADLINE_EXCEEDED, ...).`,
		Example: `  artifactstate loadtest --users 200 --ramp 1m --out /tmp/lt
  artifactstate loadtest --scenario closed --concurrency 32 --duration 2m --mix write=50,strong=50
  artifactstate loadtest --scenario open --rate 500 --duration 1m --max-in-flight 200
  artifactstate loadtest --scenario newpairs --pairs 200 --concurrency 32
  artifactstate loadtest --scenario hotpair --readers 16 --writers 4 --duration 30s --out /tmp/hot
  artifactstate loadtest --scenario fanout --followers 10000 --batch 1000 --artifacts 3 --concurrency 2
  artifactstate loadtest --protocol grpc --target localhost:8083 --scenario closed --duration 1m`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	var o loadtestFlags
	f.StringVar(&o.target, "target", "", "base URL of the API (default http://localhost:8082), or host:port of the gRPC API (default localhost:8083)")
	f.StringVar(&o.protocol, "protocol", "http", "http (the REST API) or grpc (the gRPC API)")
	f.StringVar(&o.scenario, "scenario", "gatling", strings.Join(loadtestScenarios, ", "))
	f.IntVar(&o.users, "users", 0, "gatling: virtual users (default 1000); closed, open: distinct user IDs, taken from the names (default: all of them)")
	f.IntVar(&o.pairs, "pairs", 0, "newpairs: new pairs to write and read back (default 200); closed, open: draw from this many pairs instead of users x artifacts")
	f.DurationVar(&o.ramp, "ramp", 5*time.Minute, "gatling: start the users evenly over this long")
	f.IntVar(&o.artifacts, "artifacts", loadtest.DefaultArtifacts, "artifact IDs are drawn from [0, N); fanout: artifacts to publish (default 1)")
	f.StringVar(&o.namesFile, "names", "", "file of user IDs, one a line or the first column of a CSV (default: 363 common surnames)")
	f.IntVar(&o.concurrency, "concurrency", 16, "closed: workers calling back to back; newpairs: clients (default 32); fanout: calls at once (default 1)")
	f.IntVar(&o.followers, "followers", loadtest.DefaultFollowers, "fanout: followers (new users) to publish each artifact to")
	f.IntVar(&o.batch, "batch", loadtest.DefaultFanOutBatch, "fanout: users per fan-out call (at most the service's api.maxFanoutUsers)")
	f.DurationVar(&o.duration, "duration", time.Minute, "closed, open, hotpair (default 30s): how long to generate load")
	f.IntVar(&o.readers, "readers", loadtest.DefaultHotPairReaders, "hotpair: clients reading the pair")
	f.IntVar(&o.writers, "writers", loadtest.DefaultHotPairWriters, "hotpair: clients writing the pair")
	f.DurationVar(&o.linTimeout, "linearizability-timeout", 10*time.Minute, "hotpair: bound on the linearizability check (a check that times out fails the run)")
	f.Float64Var(&o.rate, "rate", 200, "open: calls started per second")
	f.IntVar(&o.maxInFlight, "max-in-flight", 1000, "open: arrivals finding this many calls in flight are dropped (and counted)")
	f.StringVar(&o.mix, "mix", loadtest.DefaultMix.String(), "closed, open: relative weights of write, strong and eventual calls")
	f.DurationVar(&o.requestTimeout, "request-timeout", 10*time.Second, "bound on each request (fanout: 70s)")
	f.StringVar(&o.out, "out", "", "directory to write report.json, report.txt and report.html to")
	f.Uint64Var(&o.seed, "seed", 0, "random seed (0: a random one, shown in the report)")
	f.BoolVar(&o.noVerify, "no-verify", false, "skip the verification of the final state")
	f.DurationVar(&o.convergeTimeout, "converge-timeout", 2*time.Minute, "how long to wait for the read model to reflect every write")
	f.BoolVar(&o.assumeFresh, "assume-fresh", false, "the target held no state for these pairs before the run: also check that flags never set are false")
	f.DurationVar(&o.progress, "progress", 5*time.Second, "print progress to stderr this often (0: never)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		plan, err := o.validate(cmd)
		if err != nil {
			return err
		}
		return runLoadtest(cmd.Context(), plan, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// loadtestPlan is a validated run.
type loadtestPlan struct {
	loadtestFlags
	names  []string
	mixSet loadtest.Mix
	params map[string]string
}

// validate checks every flag, reporting all problems at once.
func (o loadtestFlags) validate(cmd *cobra.Command) (*loadtestPlan, error) {
	p := &loadtestPlan{loadtestFlags: o}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	changed := cmd.Flags().Changed

	switch o.protocol {
	case "http":
		if o.target == "" {
			p.target = "http://localhost:8082"
		}
		if _, err := loadtest.ParseTarget(p.target); err != nil {
			bad("--target: %v", err)
		}
	case "grpc":
		if o.target == "" {
			p.target = "localhost:8083"
		}
		if _, err := loadtest.ParseGRPCTarget(p.target); err != nil {
			bad("--target: %v", err)
		}
	default:
		bad("--protocol: must be http or grpc, got %q", o.protocol)
	}
	if slices.Contains(loadtestScenarios, o.scenario) {
		for _, name := range slices.Sorted(maps.Keys(loadtestFlagScenarios)) {
			if scenarios := loadtestFlagScenarios[name]; changed(name) && !slices.Contains(scenarios, o.scenario) {
				bad("--%s applies to --scenario %s only", name, strings.Join(scenarios, ", "))
			}
		}
	} else {
		bad("--scenario: must be one of %s, got %q", strings.Join(loadtestScenarios, ", "), o.scenario)
	}
	// Per-scenario defaults.
	if o.scenario == "newpairs" && !changed("concurrency") {
		p.concurrency = loadtest.DefaultNewPairsConcurrency
	}
	if o.scenario == "newpairs" && !changed("pairs") {
		p.pairs = loadtest.DefaultNewPairs
	}
	if o.scenario == "hotpair" && !changed("duration") {
		p.duration = loadtest.DefaultHotPairDuration
	}
	if o.scenario == "fanout" {
		if !changed("concurrency") {
			p.concurrency = loadtest.DefaultFanOutConcurrency
		}
		if !changed("artifacts") {
			p.artifacts = loadtest.DefaultFanOutArtifacts
		}
		if !changed("request-timeout") {
			p.requestTimeout = fanoutRequestTimeout
		}
	}
	if o.followers < 1 {
		bad("--followers: must be at least 1, got %d", o.followers)
	}
	if o.batch < 1 {
		bad("--batch: must be at least 1, got %d", o.batch)
	}
	if o.pairs < 0 || (changed("pairs") && o.pairs == 0) {
		bad("--pairs: must be at least 1, got %d", o.pairs)
	}
	if changed("pairs") && changed("artifacts") {
		bad("--pairs and --artifacts both say which pairs to draw from: give one")
	}
	if o.readers < 0 || o.writers < 0 || o.readers+o.writers == 0 {
		bad("--readers and --writers: must not be negative, and not both 0, got %d and %d", o.readers, o.writers)
	}
	if o.linTimeout <= 0 {
		bad("--linearizability-timeout: must be positive, got %v", o.linTimeout)
	}
	p.names = loadtest.DefaultNames()
	if o.namesFile != "" {
		if names, err := readNamesFile(o.namesFile); err != nil {
			bad("--names: %v", err)
		} else {
			p.names = names
		}
	}
	if o.users < 0 || (changed("users") && o.users == 0) {
		bad("--users: must be at least 1, got %d", o.users)
	}
	if o.users == 0 {
		p.users = len(p.names)
		if o.scenario == "gatling" {
			p.users = 1000
		}
	}
	if o.artifacts < 1 {
		bad("--artifacts: must be at least 1, got %d", o.artifacts)
	}
	if o.ramp < 0 {
		bad("--ramp: must not be negative, got %v", o.ramp)
	}
	if o.concurrency < 1 {
		bad("--concurrency: must be at least 1, got %d", o.concurrency)
	}
	if o.duration <= 0 {
		bad("--duration: must be positive, got %v", o.duration)
	}
	if o.rate <= 0 || math.IsInf(o.rate, 0) || math.IsNaN(o.rate) {
		bad("--rate: must be a positive number, got %v", o.rate)
	}
	if o.maxInFlight < 1 {
		bad("--max-in-flight: must be at least 1, got %d", o.maxInFlight)
	}
	if mix, err := loadtest.ParseMix(o.mix); err != nil {
		bad("--mix: %v", err)
	} else {
		p.mixSet = mix
	}
	if o.requestTimeout <= 0 {
		bad("--request-timeout: must be positive, got %v", o.requestTimeout)
	}
	if o.convergeTimeout <= 0 {
		bad("--converge-timeout: must be positive, got %v", o.convergeTimeout)
	}
	if o.progress < 0 {
		bad("--progress: must not be negative, got %v", o.progress)
	}
	if o.noVerify && (changed("converge-timeout") || changed("assume-fresh")) {
		bad("--converge-timeout and --assume-fresh configure the verification, which --no-verify skips")
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			bad("--out: %v", err)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid flags:\n  - " + strings.Join(problems, "\n  - "))
	}

	if p.seed == 0 {
		p.seed = rand.Uint64()
	}
	p.params = map[string]string{"seed": strconv.FormatUint(p.seed, 10), "request-timeout": p.requestTimeout.String(), "protocol": p.protocol}
	switch p.scenario {
	case "gatling":
		p.params["users"] = strconv.Itoa(p.users)
		p.params["ramp"] = p.ramp.String()
	case "closed":
		p.params["concurrency"] = strconv.Itoa(p.concurrency)
	case "open":
		p.params["rate"] = strconv.FormatFloat(p.rate, 'g', -1, 64)
		p.params["max-in-flight"] = strconv.Itoa(p.maxInFlight)
	case "newpairs":
		p.params["pairs"] = strconv.Itoa(p.pairs)
		p.params["concurrency"] = strconv.Itoa(p.concurrency)
	case "hotpair":
		p.params["readers"] = strconv.Itoa(p.readers)
		p.params["writers"] = strconv.Itoa(p.writers)
		p.params["duration"] = p.duration.String()
	case "fanout":
		p.params["followers"] = strconv.Itoa(p.followers)
		p.params["batch"] = strconv.Itoa(p.batch)
		p.params["artifacts"] = strconv.Itoa(p.artifacts)
		p.params["concurrency"] = strconv.Itoa(p.concurrency)
	}
	switch p.scenario {
	case "gatling":
		p.params["artifacts"] = strconv.Itoa(p.artifacts)
	case "closed", "open":
		p.params["user-ids"] = strconv.Itoa(p.users)
		p.params["duration"] = p.duration.String()
		p.params["mix"] = p.mixSet.String()
		if p.pairs > 0 {
			p.params["pairs"] = strconv.Itoa(p.pairs)
		} else {
			p.params["artifacts"] = strconv.Itoa(p.artifacts)
		}
	}
	p.params["names"] = fmt.Sprintf("%d embedded", len(p.names))
	if p.namesFile != "" {
		p.params["names"] = fmt.Sprintf("%d from %s", len(p.names), p.namesFile)
	}
	return p, nil
}

func readNamesFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := loadtest.ReadNames(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

func runLoadtest(ctx context.Context, p *loadtestPlan, stdout, stderr io.Writer) error {
	conns := verifyConcurrency
	switch p.scenario {
	case "gatling":
		conns = max(conns, p.users)
	case "closed", "newpairs", "fanout":
		conns = max(conns, p.concurrency)
	case "open":
		conns = max(conns, p.maxInFlight)
	case "hotpair":
		conns = max(conns, p.readers+p.writers)
	}
	newClient, health := loadtest.NewClient, checkHealth
	if p.protocol == "grpc" {
		newClient, health = loadtest.NewGRPCClient, loadtest.CheckGRPCHealth
	}
	client, err := newClient(p.target, loadtest.ClientOptions{MaxConns: conns, Timeout: p.requestTimeout})
	if err != nil {
		return err
	}
	defer client.Close()
	if !p.noVerify {
		client.Ledger = loadtest.NewLedger()
	}
	if err := health(ctx, p.target); err != nil {
		return err
	}
	if (p.scenario == "closed" || p.scenario == "open") && p.mixSet.Eventual > 0 {
		probe, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, res := client.Eventual(probe, loadtest.Pair{UserID: p.names[0], ArtifactID: 0})
		cancel()
		if loadtest.ReadModelNotConfigured(res.Err) {
			return fmt.Errorf("--mix %s has eventual reads, but the API at %s has no read model (configure Cassandra, or set eventual=0)", p.mixSet, client.Target())
		}
	}

	// Ctrl-C once stops the load, twice the verification; a third one is
	// Go's default (exit).
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	verifyCtx, stopVerify := context.WithCancel(ctx)
	defer stopVerify()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer signal.Stop(sigs)
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(stderr, "\ninterrupted: stopping the load (interrupt again to skip the verification)")
		stopLoad()
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(stderr, "\ninterrupted again: skipping the verification")
		stopVerify()
	}()

	runner := &loadtest.Runner{}
	if p.progress > 0 {
		runner.ProgressEvery = p.progress
		runner.Progress = func(pr loadtest.Progress) {
			fmt.Fprintf(stderr, "%6.0fs  %d calls (%.0f/s)  %d errors  %d in flight  %d dropped\n",
				pr.Elapsed.Seconds(), pr.Completed, float64(pr.Completed)/pr.Elapsed.Seconds(), pr.Errors, pr.InFlight, pr.Dropped)
		}
	}
	fmt.Fprintf(stderr, "load test: %s against %s over %s (seed %d)\n", p.scenario, client.Target(), p.protocol, p.seed)
	var (
		rep       *loadtest.Report
		fresh     = p.assumeFresh // newpairs and hotpair write new pairs
		loadEnded time.Time
	)
	switch p.scenario {
	case "gatling":
		g := &loadtest.Gatling{Client: client, Names: p.names, Artifacts: p.artifacts, Rand: rand.New(rand.NewPCG(p.seed, 0))}
		rep = runner.Ramp(loadCtx, p.users, p.ramp, g.User)
	case "closed", "open":
		workers := p.concurrency
		if p.scenario == "open" {
			workers = 1
		}
		users := loadtest.UserNames(p.names, p.users)
		m := loadtest.NewMixer(client, p.mixSet, users, p.artifacts, workers, p.seed)
		if p.pairs > 0 {
			m = loadtest.NewMixerOnPairs(client, p.mixSet, loadtest.PairList(users, p.pairs), workers, p.seed)
		}
		if p.scenario == "closed" {
			rep = runner.Closed(loadCtx, p.concurrency, p.duration, m.Next)
		} else {
			rep = runner.Open(loadCtx, p.rate, p.duration, p.maxInFlight, m.NextArrival)
		}
	case "newpairs":
		fresh = true
		s := &loadtest.NewPairs{Client: client, Pairs: loadtest.NewPairIDs(p.names, loadtest.RunTag(p.seed), p.pairs)}
		rep = s.Run(loadCtx, runner, p.concurrency)
	case "hotpair":
		fresh = true
		if rep, loadEnded, err = runHotPair(loadCtx, p, client, runner, stderr); err != nil {
			return err
		}
	case "fanout":
		fresh = true
		rep = runFanOut(loadCtx, p, client, runner, stderr)
	}
	if loadEnded.IsZero() {
		loadEnded = time.Now()
	}
	rep.Scenario, rep.Target, rep.Params = p.scenario, client.Target(), p.params

	if !p.noVerify {
		fmt.Fprintf(stderr, "verifying the final state of the pairs written (read model: up to %v)\n", p.convergeTimeout)
		rep.Verification = loadtest.Verify(verifyCtx, client, client.Ledger, loadtest.VerifyOptions{
			Concurrency: verifyConcurrency, ConvergeTimeout: p.convergeTimeout, AssumeFresh: fresh, LoadEnded: loadEnded})
	}

	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if p.out != "" {
		if err := writeReports(rep, p.out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "reports written to %s\n", filepath.Join(p.out, "report.{txt,json,html}"))
	}
	if failures := rep.Failures(); len(failures) > 0 {
		return errors.New("load test failed: " + strings.Join(failures, "; "))
	}
	return nil
}

// runHotPair runs the hot-pair scenario and checks its history, writing
// the visualization of a failure to --out (or the temporary directory). It
// returns when the load ended too.
func runHotPair(ctx context.Context, p *loadtestPlan, client *loadtest.Client, runner *loadtest.Runner, stderr io.Writer) (*loadtest.Report, time.Time, error) {
	h := &loadtest.HotPair{Client: client, Pair: loadtest.NewPairIDs(p.names, loadtest.RunTag(p.seed)+"hot", 1)[0],
		Readers: p.readers, Writers: p.writers, Recorder: linearizability.NewRecorder()}
	p.params["pair"] = fmt.Sprintf("(%q, %d)", h.Pair.UserID, h.Pair.ArtifactID)
	h.Prepare()
	rep := runner.Closed(ctx, h.Workers(), p.duration, h.Next)
	ended := time.Now()
	rep.ZeroErrors = true
	history := h.Recorder.History()
	visualization := filepath.Join(os.TempDir(), "artifactstate-linearizability-"+loadtest.RunTag(p.seed)+".html")
	if p.out != "" {
		visualization = filepath.Join(p.out, "linearizability.html")
	}
	fmt.Fprintf(stderr, "checking that the history of %d calls is linearizable (up to %v)\n", history.Len(), p.linTimeout)
	started := time.Now()
	lin, err := linearizability.Check(history, linearizability.Options{Timeout: p.linTimeout, Visualization: visualization})
	if err != nil {
		return nil, ended, err
	}
	fmt.Fprintf(stderr, "checked in %.1fs\n", time.Since(started).Seconds())
	rep.Linearizability = lin
	return rep, ended, nil
}

// runFanOut runs the fan-out scenario on new followers (tagged with the
// seed), its progress a bar of the pairs answered.
func runFanOut(ctx context.Context, p *loadtestPlan, client *loadtest.Client, runner *loadtest.Runner, stderr io.Writer) *loadtest.Report {
	tag := loadtest.RunTag(p.seed)
	s := &loadtest.FanOut{Client: client, Followers: loadtest.FollowerIDs(p.names, tag, p.followers), Batch: p.batch,
		Artifacts: make([]int64, p.artifacts), KeyPrefix: "loadtest-" + tag}
	for i := range s.Artifacts {
		s.Artifacts[i] = int64(i)
	}
	p.params["first-follower"] = s.Followers[0]
	if runner.Progress != nil {
		runner.Progress = func(pr loadtest.Progress) {
			done := s.PairsAnswered()
			fmt.Fprintf(stderr, "%6.0fs %s %d/%d pairs (%.0f/s)  %d calls in flight  %d calls failed\n",
				pr.Elapsed.Seconds(), loadtest.ProgressBar(done, s.Pairs(), 30), done, s.Pairs(),
				float64(done)/pr.Elapsed.Seconds(), pr.InFlight, pr.Errors)
		}
	}
	fmt.Fprintf(stderr, "publishing %d artifacts to %d followers each: %d calls of up to %d users, %d at once\n",
		p.artifacts, p.followers, s.Calls(), p.batch, p.concurrency)
	return s.Run(ctx, runner, p.concurrency)
}

// checkHealth fails unless the API answers /healthz, so that a wrong
// --target is one readable error rather than a run of refused calls.
func checkHealth(ctx context.Context, target string) error {
	base, err := loadtest.ParseTarget(target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the API at %s does not answer: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the API at %s answered %s to GET /healthz", base, resp.Status)
	}
	return nil
}

func writeReports(rep *loadtest.Report, dir string) error {
	for name, write := range map[string]func(io.Writer) error{
		"report.json": rep.WriteJSON,
		"report.txt":  rep.WriteText,
		"report.html": rep.WriteHTML,
	} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
