package upgrade

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
)

// Stack is one deployment on this machine, shared by the releases that run
// on it one after the other or side by side: the dev role's Temporal store
// on a file, its frontend's port, a read-model keyspace on a real
// Cassandra, and the payload encryption keys. Its processes run with the
// settings production uses: search attributes on (the dev role registers
// them), encrypted payloads, the read model on.
type Stack struct {
	Dir      string
	Frontend string // host:port of the embedded frontend
	API      string // base URL of the dev process's API
	opts     StackOptions
	apiPort  int
	procs    []*Proc
}

// StackOptions configure a stack.
type StackOptions struct {
	// Dir holds the store, the logs and the keys; it must exist.
	Dir string
	// CassandraHosts and Keyspace name the read model (the dev role
	// creates the keyspace).
	CassandraHosts []string
	Keyspace       string
	// KeysFile holds the payload encryption keys ("": no encryption).
	KeysFile string
	// HistoryBudget is worker.maxHistoryEvents: small enough for
	// continue-as-new chains in a short test (at least 100).
	HistoryBudget int
}

// NewStack reserves the stack's ports.
func NewStack(opts StackOptions) (*Stack, error) {
	frontend, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	api, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	return &Stack{Dir: opts.Dir, opts: opts, apiPort: api,
		Frontend: net.JoinHostPort("127.0.0.1", strconv.Itoa(frontend)),
		API:      "http://127.0.0.1:" + strconv.Itoa(api)}, nil
}

// env is what every process of the stack shares.
func (s *Stack) env() []string {
	o := s.opts
	env := []string{
		"ARTIFACTSTATE_TEMPORAL_NAMESPACE=default",
		"ARTIFACTSTATE_CASSANDRA_HOSTS=" + strings.Join(o.CassandraHosts, ","),
		"ARTIFACTSTATE_CASSANDRA_KEYSPACE=" + o.Keyspace,
		"ARTIFACTSTATE_CASSANDRA_CONSISTENCY=ONE",
		"ARTIFACTSTATE_CASSANDRA_TIMEOUT=10s",
		"ARTIFACTSTATE_CASSANDRA_PROJECTION_RETRY_INITIAL_INTERVAL=200ms",
		"ARTIFACTSTATE_CASSANDRA_PROJECTION_RETRY_MAX_INTERVAL=1s",
		"ARTIFACTSTATE_CASSANDRA_PROJECTION_REJECTED_PAUSE=1s",
		"ARTIFACTSTATE_WORKER_MAX_HISTORY_EVENTS=" + strconv.Itoa(o.HistoryBudget),
		"ARTIFACTSTATE_WORKER_STOP_TIMEOUT=2s",
	}
	if o.KeysFile != "" {
		env = append(env, "ARTIFACTSTATE_TEMPORAL_ENCRYPTION_KEYS_FILE="+o.KeysFile)
	}
	return env
}

// Dev is the dev role of b on the stack's store (its embedded Temporal
// server and the API, and its worker unless withWorker is false, which b
// must support). It is not started.
func (s *Stack) Dev(b Binary, name string, withWorker bool) (*Proc, error) {
	args := []string{"dev"}
	if !withWorker {
		if !b.NoWorker {
			return nil, fmt.Errorf("%s (%s) cannot run its dev role without a worker", name, b.Name)
		}
		args = append(args, "--no-worker")
	}
	_, port, err := net.SplitHostPort(s.Frontend)
	if err != nil {
		return nil, err
	}
	admin, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	grpc, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	env := append(s.env(),
		"ARTIFACTSTATE_DEV_DATA_DIR="+filepath.Join(s.Dir, "store"),
		"ARTIFACTSTATE_DEV_FRONTEND_PORT="+port,
		"ARTIFACTSTATE_DEV_UI_PORT=0",
		"ARTIFACTSTATE_API_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(s.apiPort),
		"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(admin),
		"ARTIFACTSTATE_GRPC_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(grpc),
		"ARTIFACTSTATE_WORKER_IDENTITY="+name,
	)
	return s.add(newProc(name, b.Path, args, env, filepath.Join(s.Dir, name+".log"), s.API)), nil
}

// Versioning is how a worker takes part in Worker Versioning.
type Versioning struct {
	BuildID string
	Promote string // config.PromoteIfNoCurrent, PromoteAlways or PromoteNever
}

// Worker is the worker role of b against the stack's frontend; v nil runs
// it unversioned (a binary without Worker Versioning always is). It is not
// started.
func (s *Stack) Worker(b Binary, name string, v *Versioning) (*Proc, error) {
	admin, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	env := append(s.env(),
		"ARTIFACTSTATE_TEMPORAL_ADDRESS="+s.Frontend,
		"ARTIFACTSTATE_TEMPORAL_COMPRESSION=none",
		"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=127.0.0.1:"+strconv.Itoa(admin),
		"ARTIFACTSTATE_WORKER_IDENTITY="+name,
	)
	if v == nil {
		env = append(env, "ARTIFACTSTATE_WORKER_VERSIONING_ENABLED=false")
	} else {
		if !b.Versioning {
			return nil, fmt.Errorf("%s (%s) has no Worker Versioning", name, b.Name)
		}
		env = append(env, "ARTIFACTSTATE_WORKER_VERSIONING_ENABLED=true",
			"ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID="+v.BuildID,
			"ARTIFACTSTATE_WORKER_VERSIONING_PROMOTE="+v.Promote)
	}
	return s.add(newProc(name, b.Path, []string{"worker"}, env, filepath.Join(s.Dir, name+".log"),
		"http://127.0.0.1:"+strconv.Itoa(admin))), nil
}

func (s *Stack) add(p *Proc) *Proc {
	s.procs = append(s.procs, p)
	return p
}

// Procs are every process the stack described.
func (s *Stack) Procs() []*Proc { return s.procs }

// StopAll stops every process that runs.
func (s *Stack) StopAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		_ = s.procs[i].Stop(30 * time.Second)
	}
}

// DataConverter reads the stack's payloads.
func (s *Stack) DataConverter() (converter.DataConverter, error) {
	if s.opts.KeysFile == "" {
		return converter.GetDefaultDataConverter(), nil
	}
	codec, err := payloadcrypt.Load(s.opts.KeysFile)
	if err != nil {
		return nil, err
	}
	return payloadcrypt.DataConverter(codec), nil
}

// Client is a Temporal client of the stack's frontend that reads its
// payloads.
func (s *Stack) Client(ctx context.Context) (client.Client, error) {
	dc, err := s.DataConverter()
	if err != nil {
		return nil, err
	}
	return client.DialContext(ctx, client.Options{HostPort: s.Frontend, Namespace: "default", Identity: "upgrade-test",
		DataConverter: dc, FailureConverter: payloadcrypt.FailureConverter(dc)})
}
