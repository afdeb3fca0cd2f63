package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// benchFlags configure `localcluster bench`.
type benchFlags struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	mix         string
	workers     string
	out         string
	noDev       bool
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&b.duration, "duration", time.Minute, "load time of each measured point (bench)")
	fs.DurationVar(&b.warmup, "warmup", 15*time.Second, "unmeasured load before each point, after the workers changed (bench)")
	fs.IntVar(&b.concurrency, "concurrency", 32, "closed-model callers in all, split evenly over the api nodes (bench)")
	fs.StringVar(&b.mix, "mix", "write=50,strong=50", "loadtest --mix: writes and strong reads (bench)")
	fs.StringVar(&b.workers, "workers", "1,2,3", "numbers of artifactstate workers to measure the cluster with (bench)")
	fs.StringVar(&b.out, "out", "", "directory for the reports (bench; default DIR/bench/<time>)")
	fs.BoolVar(&b.noDev, "no-dev", false, "skip the all-in-one dev measurement (bench)")
}

// point is one measured configuration.
type point struct {
	Target     string   `json:"target"` // "cluster" or "dev"
	Workers    int      `json:"workers"`
	Throughput float64  `json:"throughputPerSecond"` // successful calls per second, all loadtest processes
	OK         int      `json:"ok"`
	Errors     int      `json:"errors"`
	WriteP50   float64  `json:"writeP50Ms"`
	WriteP99   float64  `json:"writeP99Ms"`
	ReadP50    float64  `json:"strongReadP50Ms"`
	ReadP99    float64  `json:"strongReadP99Ms"`
	Verified   bool     `json:"verified"`
	Reports    []string `json:"reports"`
}

// runBench measures the closed model (writes and strong reads) against the
// cluster with each number of workers, then against `artifactstate dev` on
// the same machine, and prints the table and the ratio.
func runBench(ctx context.Context, c *localcluster.Cluster, b benchFlags, log *slog.Logger, stdout io.Writer) error {
	var counts []int
	for _, s := range strings.Split(b.workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 8 {
			return fmt.Errorf("--workers: %q is not a list of numbers from 1 to 8", b.workers)
		}
		counts = append(counts, n)
	}
	if b.concurrency < 2 || b.duration < 5*time.Second {
		return errors.New("--concurrency must be at least 2 and --duration at least 5s")
	}
	out := b.out
	if out == "" {
		out = filepath.Join(c.Dir(), "bench", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	binary, err := filepath.Abs(filepath.Join("bin", "artifactstate"))
	if err != nil {
		return err
	}
	upCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := c.Up(upCtx); err != nil {
		return err
	}
	var points []point
	for _, n := range counts {
		if err := setWorkers(ctx, c, n, log); err != nil {
			return err
		}
		log.Info("measuring the cluster", "workers", n, "duration", b.duration)
		p, err := measure(ctx, binary, c.APIURLs(), b, filepath.Join(out, fmt.Sprintf("cluster-%dw", n)), log)
		if err != nil {
			return err
		}
		p.Target, p.Workers = "cluster", n
		points = append(points, p)
	}
	if err := setWorkers(ctx, c, 2, log); err != nil {
		return err
	}
	if !b.noDev {
		p, err := measureDev(ctx, c, binary, b, filepath.Join(out, "dev"), log)
		if err != nil {
			return err
		}
		points = append(points, p)
	}
	return writeSummary(stdout, out, b, points)
}

// setWorkers starts or stops artifactstate workers until exactly n run.
func setWorkers(ctx context.Context, c *localcluster.Cluster, n int, log *slog.Logger) error {
	for i := 1; i <= 8; i++ {
		name := localcluster.WorkerName(i)
		running := slices.ContainsFunc(c.Status(ctx), func(s localcluster.ProcessStatus) bool { return s.Name == name && s.Running })
		switch {
		case i <= n && !running:
			log.Info("starting a worker", "process", name)
			if err := c.Start(ctx, name); err != nil {
				return err
			}
		case i > n && running:
			log.Info("stopping a worker", "process", name)
			if err := c.Stop(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// measure runs one `artifactstate loadtest --scenario closed` per api URL at
// the same time, on disjoint users, and adds their figures up.
func measure(ctx context.Context, binary string, urls []string, b benchFlags, dir string, log *slog.Logger) (point, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return point{}, err
	}
	if b.warmup > 0 {
		// Same load, not measured: workers that just started or stopped,
		// entity caches and connections settle first.
		log.Info("warming up", "duration", b.warmup)
		var wg sync.WaitGroup
		for _, u := range urls {
			wg.Go(func() {
				out, err := exec.CommandContext(ctx, binary, "loadtest", "--target", u, "--scenario", "closed",
					"--concurrency", strconv.Itoa(b.concurrency/len(urls)), "--duration", b.warmup.String(), "--mix", b.mix,
					"--no-verify", "--progress", "0").CombinedOutput()
				if err != nil {
					log.Warn("warm-up load failed (the measurement goes on)", "target", u, "err", err, "output", string(out))
				}
			})
		}
		wg.Wait()
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		reports []string
	)
	per := b.concurrency / len(urls)
	for i, u := range urls {
		wg.Go(func() {
			names := filepath.Join(dir, fmt.Sprintf("names-%d.txt", i+1))
			var sb strings.Builder
			for j := range 200 { // fresh users: the verification may assume a fresh target
				fmt.Fprintf(&sb, "bench-%s-%d-%d\n", run, i+1, j)
			}
			if err := os.WriteFile(names, []byte(sb.String()), 0o644); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			rdir := filepath.Join(dir, fmt.Sprintf("api-%d", i+1))
			cmd := exec.CommandContext(ctx, binary, "loadtest", "--target", u, "--scenario", "closed",
				"--concurrency", strconv.Itoa(per), "--duration", b.duration.String(), "--mix", b.mix,
				"--names", names, "--assume-fresh", "--progress", "0", "--out", rdir)
			logF, err := os.Create(filepath.Join(dir, fmt.Sprintf("loadtest-%d.log", i+1)))
			if err == nil {
				defer logF.Close()
				cmd.Stdout, cmd.Stderr = logF, logF
				err = cmd.Run()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("loadtest against %s: %w (see %s)", u, err, logF.Name()))
			}
			reports = append(reports, filepath.Join(rdir, "report.json"))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return point{}, err
	}
	slices.Sort(reports)
	p := point{Reports: reports, Verified: true}
	for _, r := range reports {
		if err := p.add(r); err != nil {
			return point{}, err
		}
	}
	log.Info("measured", "throughput", fmt.Sprintf("%.1f/s", p.Throughput), "errors", p.Errors)
	return p, nil
}

// loadtestReport is the part of loadtest's report.json the bench reads.
type loadtestReport struct {
	DurationSeconds float64 `json:"durationSeconds"`
	Total           struct {
		OK     int `json:"ok"`
		Errors int `json:"errors"`
	} `json:"total"`
	Calls []struct {
		Call    string `json:"call"`
		Latency struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"latencyMs"`
	} `json:"calls"`
	Verification *struct {
		API       struct{ Status string } `json:"api"`
		ReadModel struct{ Status string } `json:"readModel"`
	} `json:"verification"`
}

// add adds one loadtest report: throughputs add up, latencies keep the
// worst of the processes.
func (p *point) add(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r loadtestReport
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if r.DurationSeconds <= 0 {
		return fmt.Errorf("%s: no measured window", path)
	}
	p.OK += r.Total.OK
	p.Errors += r.Total.Errors
	p.Throughput += float64(r.Total.OK) / r.DurationSeconds
	for _, c := range r.Calls {
		switch {
		case c.Call == loadtest.CallSetRead || c.Call == loadtest.CallAddToFeed || c.Call == loadtest.CallRemoveFromFeed:
			p.WriteP50, p.WriteP99 = max(p.WriteP50, c.Latency.P50), max(p.WriteP99, c.Latency.P99)
		case strings.HasPrefix(c.Call, loadtest.CallGetAllStates):
			p.ReadP50, p.ReadP99 = max(p.ReadP50, c.Latency.P50), max(p.ReadP99, c.Latency.P99)
		}
	}
	if r.Verification == nil || r.Verification.API.Status != loadtest.CheckOK ||
		(r.Verification.ReadModel.Status != loadtest.CheckOK && r.Verification.ReadModel.Status != loadtest.CheckSkipped) {
		p.Verified = false
	}
	return nil
}

// measureDev stops the cluster's Temporal services, workers, api nodes and
// UI (the ring and PostgreSQL stay: dev's read model is a keyspace of its
// own on the same ring, replicated and read the same way), runs `dev` with
// its SQLite file as `make run` does, measures it with the whole
// concurrency on its one API, stops it and brings the cluster back.
func measureDev(ctx context.Context, c *localcluster.Cluster, binary string, b benchFlags, dir string, log *slog.Logger) (point, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return point{}, err
	}
	log.Info("stopping the cluster's Temporal and artifactstate processes for the dev measurement")
	if err := c.StopServices(ctx); err != nil {
		return point{}, err
	}
	defer func() {
		log.Info("bringing the cluster back")
		upCtx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if err := c.Up(upCtx); err != nil {
			log.Error("cluster up after the dev measurement", "err", err)
		}
	}()
	apiPort, err := freePort()
	if err != nil {
		return point{}, err
	}
	fePort, err := freePort()
	if err != nil {
		return point{}, err
	}
	logF, err := os.Create(filepath.Join(dir, "dev.log"))
	if err != nil {
		return point{}, err
	}
	defer logF.Close()
	cmd := exec.Command(binary, "dev", "--listen", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--data-dir", filepath.Join(dir, "data"), "--cassandra-hosts", c.CassandraHosts())
	env := []string{
		"ARTIFACTSTATE_DEV_FRONTEND_PORT=" + strconv.Itoa(fePort), "ARTIFACTSTATE_DEV_UI_PORT=0",
		"ARTIFACTSTATE_CASSANDRA_KEYSPACE=artifactstate_bench_dev",
		"ARTIFACTSTATE_CASSANDRA_REPLICATION_CLASS=SimpleStrategy",
		"ARTIFACTSTATE_CASSANDRA_REPLICATION_FACTOR=" + strconv.Itoa(c.Deployment().ReplicationFactor),
		"ARTIFACTSTATE_CASSANDRA_CONSISTENCY=" + c.Deployment().WorkerEnv["ARTIFACTSTATE_CASSANDRA_CONSISTENCY"],
		"ARTIFACTSTATE_CASSANDRA_LOCAL_DC=" + c.Deployment().WorkerEnv["ARTIFACTSTATE_CASSANDRA_LOCAL_DC"],
		"ARTIFACTSTATE_CASSANDRA_TIMEOUT=30s",
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logF, logF
	if err := cmd.Start(); err != nil {
		return point{}, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitHTTP(ctx, url+"/readyz", done, 3*time.Minute); err != nil {
		return point{}, fmt.Errorf("dev did not get ready: %w (see %s)", err, logF.Name())
	}
	log.Info("measuring dev", "duration", b.duration)
	p, err := measure(ctx, binary, []string{url}, b, dir, log)
	if err != nil {
		return point{}, err
	}
	p.Target, p.Workers = "dev", 1
	return p, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(ctx context.Context, url string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-exited:
			return errors.New("the process exited")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func writeSummary(stdout io.Writer, dir string, b benchFlags, points []point) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "closed model, --concurrency %d in all, --duration %v, --mix %s\n\n", b.concurrency, b.duration, b.mix)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tWORKERS\tOK CALLS/S\tWRITE p50/p99 ms\tSTRONG READ p50/p99 ms\tERRORS\tVERIFIED")
	for _, p := range points {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f / %.1f\t%.1f / %.1f\t%d\t%t\n", p.Target, p.Workers, p.Throughput,
			p.WriteP50, p.WriteP99, p.ReadP50, p.ReadP99, p.Errors, p.Verified)
	}
	_ = tw.Flush()
	var dev *point
	for i := range points {
		if points[i].Target == "dev" {
			dev = &points[i]
		}
	}
	if dev != nil && dev.Throughput > 0 {
		fmt.Fprintln(&sb)
		for _, p := range points {
			if p.Target == "cluster" {
				fmt.Fprintf(&sb, "cluster with %d worker(s) / dev: %.2f\n", p.Workers, p.Throughput/dev.Throughput)
			}
		}
	}
	fmt.Fprintf(&sb, "\nreports: %s\n", dir)
	if _, err := io.WriteString(stdout, sb.String()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	j, err := json.MarshalIndent(map[string]any{"concurrency": b.concurrency, "durationSeconds": b.duration.Seconds(),
		"mix": b.mix, "points": points}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), append(j, '\n'), 0o644)
}
