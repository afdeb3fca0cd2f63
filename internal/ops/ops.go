// Package ops serves the operational endpoints of a process: /metrics,
// /healthz, /readyz and, when enabled, /debug/pprof/. The api and dev roles
// mount them on the API router; the worker role serves them on
// metrics.listenAddress with Module.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
)

// Pprof returns the net/http/pprof handlers under /debug/pprof/.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Handler serves /metrics, /healthz (process up), /readyz (ready returns
// nil) and, if withPprof, /debug/pprof/.
func Handler(m *metrics.Metrics, ready func(context.Context) error, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"code": "unavailable", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if withPprof {
		mux.Handle("/debug/pprof/", Pprof())
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

// Module serves Handler on metrics.listenAddress for the worker role: ready
// means the Temporal frontend answers.
var Module = fx.Module("ops",
	fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, cfg config.Config, m *metrics.Metrics, c client.Client, logger *slog.Logger) {
		ready := func(ctx context.Context) error {
			_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err != nil {
				return fmt.Errorf("temporal at %s: %w", cfg.Temporal.Address, err)
			}
			return nil
		}
		srv := &http.Server{Handler: Handler(m, ready, cfg.Metrics.Pprof), ReadHeaderTimeout: 10 * time.Second}
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", cfg.Metrics.ListenAddress)
				if err != nil {
					return fmt.Errorf("metrics.listenAddress %s: %w", cfg.Metrics.ListenAddress, err)
				}
				logger.Info("Metrics and health endpoints listening", "address", "http://"+ln.Addr().String(),
					"paths", "/metrics /healthz /readyz")
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						logger.Error("Metrics server failed", "error", err)
						if err := sd.Shutdown(fx.ExitCode(1)); err != nil {
							logger.Error("Cannot shut down", "error", err)
						}
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error { return srv.Shutdown(ctx) },
		})
	}),
)
