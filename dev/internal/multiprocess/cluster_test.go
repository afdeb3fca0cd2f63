package multiprocess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
)

// binary is the artifactstate binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "artifactstate-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "artifactstate")
		build := exec.Command("go", "build", "-o", binary, "./cmd/artifactstate")
		build.Dir = "../.."
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build the binary:", err)
			return 1
		}
		return m.Run()
	}())
}

// process is one running artifactstate process.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	url  string // its HTTP base URL (API, or metrics/health for a worker)
	done chan struct{}
}

type syncBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// start runs `artifactstate <role>` with env and waits until /readyz answers
// 200 on its HTTP port.
func start(t *testing.T, name, role string, env []string, port int) *process {
	t.Helper()
	p := &process{name: name, log: &bytes.Buffer{}, mu: &sync.Mutex{}, url: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	p.cmd = exec.Command(binary, role)
	// The api and dev roles serve gRPC too: on a free port unless env says.
	grpcListen := "ARTIFACTSTATE_GRPC_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	p.cmd.Env = append(append(os.Environ(), grpcListen), env...)
	out := syncBuffer{p.mu, p.log}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait() // its exit status is read through ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- log of %s ---\n%s", p.name, p.output())
		}
	})
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", name, p.output())
		default:
		}
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s not ready: %d", name, resp.StatusCode)
		}
		return nil
	})
	return p
}

// fleet is worker and api processes of the binary against one Temporal
// server, as the production shape runs them.
type fleet struct {
	t       *testing.T
	env     []string // every process's
	workers []*process
	apis    []*process
	// identities and ports of the workers, kept across restarts.
	identities  []string
	workerPorts []int
	workerEnv   []string
}

// fleetOptions say what to start.
type fleetOptions struct {
	Workers, APIs int
	// Identity starts the workers' identities: "worker" names them
	// worker-0, worker-1, ...
	Identity string
	// Env is added to every process's environment, after the Temporal
	// server's address and namespace and log level warn.
	Env []string
	// WorkerEnv is added to the workers' environment.
	WorkerEnv []string
}

// startFleet starts the workers, then the api processes, each on ports of
// its own, and waits until every one is ready.
func startFleet(t *testing.T, tt *testenv.Temporal, o fleetOptions) *fleet {
	t.Helper()
	f := &fleet{t: t, workerEnv: o.WorkerEnv, env: append([]string{
		"ARTIFACTSTATE_TEMPORAL_ADDRESS=" + tt.Address,
		"ARTIFACTSTATE_TEMPORAL_NAMESPACE=" + testenv.Namespace,
		"ARTIFACTSTATE_LOG_LEVEL=warn",
	}, o.Env...)}
	for i := range o.Workers {
		f.identities = append(f.identities, o.Identity+"-"+strconv.Itoa(i))
		f.workerPorts = append(f.workerPorts, testenv.FreePort(t))
		f.workers = append(f.workers, f.startWorker(i, fmt.Sprintf("worker-%d", i)))
	}
	for i := range o.APIs {
		port := testenv.FreePort(t)
		f.apis = append(f.apis, start(t, fmt.Sprintf("api-%d", i), "api", append(slices.Clone(f.env),
			"ARTIFACTSTATE_API_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(port),
			"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(testenv.FreePort(t))), port))
	}
	return f
}

// startWorker starts worker i with its identity and admin port.
func (f *fleet) startWorker(i int, name string) *process {
	f.t.Helper()
	env := append(slices.Clone(f.env), f.workerEnv...)
	env = append(env, "ARTIFACTSTATE_WORKER_IDENTITY="+f.identities[i],
		"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(f.workerPorts[i]))
	return start(f.t, name, "worker", env, f.workerPorts[i])
}

// restartWorker starts worker i again (after kill), with the same identity
// and port.
func (f *fleet) restartWorker(i int) {
	f.t.Helper()
	f.workers[i] = f.startWorker(i, fmt.Sprintf("worker-%d (restarted)", i))
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop asks the process to stop (SIGTERM), and kills it if it lingers.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Logf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill is a crash: SIGKILL, no goodbye.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

type reply struct {
	status int
	body   string
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func call(method, url, body string) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}, err
}

func pair(artifact int64, user string) string {
	u, _ := json.Marshal(user)
	return fmt.Sprintf(`{"artifactId":%d,"userId":%s}`, artifact, u)
}

func query(artifact int64, user string) string {
	return "?" + url.Values{"artifactId": {strconv.FormatInt(artifact, 10)}, "userId": {user}}.Encode()
}
