// Package testenv starts real parts for integration tests: an in-process
// Temporal server (the same embedded server as the dev role) on free ports,
// workers and the API. Only tests import it: it links the Temporal server.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/worker"
)

// Logger is the tests' logger: warnings and errors to stderr, or everything
// with ARTIFACTSTATE_TEST_LOG=debug.
func Logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("ARTIFACTSTATE_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Temporal is an embedded Temporal server.
type Temporal struct {
	t       testing.TB
	opts    devserver.Options
	server  *devserver.Server
	Address string
}

// Namespace is the namespace every test server creates.
const Namespace = "default"

// TemporalOptions tune StartTemporal.
type TemporalOptions struct {
	// Persistent keeps the data in a SQLite file in the test's temp dir, so
	// the server can be stopped and started again with its data. Otherwise
	// the data lives in memory, which is several times faster.
	Persistent    bool
	DynamicConfig map[string]any
	// Retention of closed workflows' histories in the namespace (0: 24 h;
	// below an hour needs system.namespaceMinRetentionLocal lowered).
	Retention time.Duration
	// TLS makes the frontend serve TLS (and require client certificates
	// when it names a ClientCAFile).
	TLS *devserver.TLS
}

// StartTemporal starts a server on a free port; it stops with the test.
func StartTemporal(t testing.TB, o TemporalOptions) *Temporal {
	t.Helper()
	tt := &Temporal{t: t, opts: devserver.Options{
		IP:            "127.0.0.1",
		Namespaces:    []string{Namespace},
		Logger:        Logger(),
		LogLevel:      slog.LevelError,
		DynamicConfig: o.DynamicConfig,
		Retention:     o.Retention,
		TLS:           o.TLS,
	}}
	if o.Persistent {
		tt.opts.DatabaseFile = filepath.Join(t.TempDir(), "temporal.db")
	}
	tt.start(true)
	t.Cleanup(tt.Stop)
	return tt
}

// Start starts the server again, on the same port and, if persistent, the
// same database.
func (tt *Temporal) Start() {
	tt.t.Helper()
	tt.start(false)
}

// start starts the server. Its ports are picked free just before it binds
// them; a test running beside it may take one first, so a start that lost
// that race is tried again, on new ports where allowed (a first start: a
// failed attempt may leave the ports it did bind open).
func (tt *Temporal) start(newPorts bool) {
	tt.t.Helper()
	for attempt := 1; ; attempt++ {
		if tt.opts.FrontendPort == 0 || (newPorts && attempt > 1) {
			tt.opts.FrontendPort = FreePort(tt.t)
			tt.Address = net.JoinHostPort(tt.opts.IP, strconv.Itoa(tt.opts.FrontendPort))
		}
		s, err := devserver.New(tt.opts)
		if err != nil {
			tt.t.Fatal(err)
		}
		err = s.Start()
		if err == nil {
			tt.server = s
			return
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tt.t.Fatal(err)
		}
		tt.t.Logf("start Temporal (attempt %d): %v", attempt, err)
	}
}

// Stop stops the server; a stopped server stays stopped.
func (tt *Temporal) Stop() {
	if tt.server == nil {
		return
	}
	if err := tt.server.Stop(); err != nil {
		tt.t.Logf("stop Temporal: %v", err)
	}
	tt.server = nil
}

// Config is the default configuration pointed at this server. Tests of
// failures shorten the request timeout themselves.
func (tt *Temporal) Config() config.Config {
	cfg := config.Default()
	cfg.Temporal.Address = tt.Address
	cfg.Temporal.Namespace = Namespace
	cfg.API.RequestTimeout = 15 * time.Second
	cfg.Worker.StopTimeout = 2 * time.Second
	return cfg
}

// Client returns a lazy client like the binary's, closed with the test.
func Client(t testing.TB, cfg config.Config, identity string) client.Client {
	t.Helper()
	c, err := temporalclient.New(cfg.Temporal, Logger(), temporalclient.Options{Identity: identity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartWorker starts a worker like the binary's (projection nil: no read
// model); it stops with the test unless stopped before.
func StartWorker(t testing.TB, c client.Client, cfg config.Config, projection *activities.Projection) *worker.Worker {
	t.Helper()
	w := worker.New(c, worker.SettingsOf(cfg), projection)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	Promote(t, w, c)
	return w
}

// Promote makes a started worker's build current as the worker role does
// (versioned by default, worker.versioning.promote ifNoCurrent), for tests
// that build their worker themselves.
func Promote(t testing.TB, w *worker.Worker, c client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.Promote(ctx, c, Logger()); err != nil {
		t.Fatal(err)
	}
}

// StartAPI serves the API handler on a free port (store nil: no read
// model); it stops with the test.
func StartAPI(t testing.TB, c client.Client, cfg config.Config, store *readmodel.Store) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(server.NewHandler(cfg.API, server.Deps{Pairs: Pairs(c, cfg, store), Logger: Logger()}))
	t.Cleanup(api.Close)
	return api
}

// StartAPIWith serves the API handler over the given entity client (no read
// model); it stops with the test.
func StartAPIWith(t testing.TB, e *entities.Client, cfg config.Config) *httptest.Server {
	t.Helper()
	api := httptest.NewServer(server.NewHandler(cfg.API, server.Deps{Pairs: PairsOn(e, cfg, nil), Logger: Logger()}))
	t.Cleanup(api.Close)
	return api
}

// Pairs is the application service the APIs serve, as the binary builds it
// on c (store nil: no read model).
func Pairs(c client.Client, cfg config.Config, store *readmodel.Store) *pairs.Service {
	return PairsOn(entities.New(c, EntitiesOptions(cfg), Logger()), cfg, store)
}

// PairsOn is Pairs over the given entity client.
func PairsOn(e *entities.Client, cfg config.Config, store *readmodel.Store) *pairs.Service {
	fanOut := pairs.WithFanOut(pairs.FanOutLimitsOf(cfg.API))
	if store == nil { // a nil *Store must not become a non-nil interface
		return pairs.New(e, nil, cfg.API.RequestTimeout, fanOut)
	}
	return pairs.New(e, store, cfg.API.RequestTimeout, fanOut)
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Eventually polls cond every interval until it returns nil or the timeout
// passes, then fails with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("condition not met within %v: %v", timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// EntitiesOptions are the entities options the binary derives from cfg.
func EntitiesOptions(cfg config.Config) entities.Options {
	return entities.OptionsFrom(cfg.Temporal, cfg.API)
}
