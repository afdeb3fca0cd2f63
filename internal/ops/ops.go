// Package ops is the admin listener every role opens on
// admin.listenAddress: /metrics, /healthz, /readyz, /debug/pprof/ (when
// admin.pprof) and the payload codec /codec/ (when payloads are encrypted)
// that the Temporal Web UI calls to show operators decrypted payloads. The
// public API port serves none of these but health.
package ops

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/httpserve"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
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

// Deps are what the admin handler serves.
type Deps struct {
	Metrics *metrics.Metrics
	// Ready returns nil when the process can work (Temporal reachable).
	Ready func(context.Context) error
	Pprof bool
	// Codec, when set, is served at /codec/ (encode and decode).
	Codec converter.PayloadCodec
	// CodecCORSOrigins may call the codec from a browser (the Web UI).
	CodecCORSOrigins []string
	// Authenticator, when set, guards the codec: an admin scope is needed.
	Authenticator *auth.Authenticator
	Logger        *slog.Logger
}

// Handler serves the admin endpoints.
func Handler(d Deps) http.Handler {
	mux := http.NewServeMux()
	if d.Metrics != nil {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", ReadyHandler(d.Ready, d.Logger))
	if d.Pprof {
		mux.Handle("/debug/pprof/", Pprof())
	}
	if d.Codec != nil {
		codec := http.StripPrefix("/codec", converter.NewPayloadCodecHTTPHandler(d.Codec))
		if d.Authenticator != nil {
			codec = requireAdmin(d.Authenticator, codec)
		}
		mux.Handle("/codec/", cors(d.CodecCORSOrigins, codec))
	}
	return mux
}

// NotReady is all /readyz tells a caller; the reason goes to the log.
const NotReady = "not ready: a dependency is unavailable (see the service's log)"

// ReadyHandler answers 200 when ready returns nil, else 503 with a generic
// message: error text can name hosts and internals a caller has no need
// to see.
func ReadyHandler(ready func(context.Context) error, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.WarnContext(ctx, "Not ready", "error", err)
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"code": "unavailable", "error": NotReady})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// requireAdmin lets through callers with an admin scope. The Web UI passes
// the operator's own access token when "include credentials" is set.
func requireAdmin(a *auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		p, err := a.Principal(r.Context(), auth.Credentials{Authorization: r.Header.Get("Authorization"), APIKey: r.Header.Get("X-API-Key")})
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="artifactstate"`)
			writeJSON(w, http.StatusUnauthorized, auth.ErrorBody{Code: "unauthenticated", Error: reason(err)})
			return
		}
		if err := a.Rules().AuthorizeAdmin(p); err != nil {
			writeJSON(w, http.StatusForbidden, auth.ErrorBody{Code: "permission_denied", Error: reason(err)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func reason(err error) string {
	if e, ok := err.(*auth.Error); ok {
		return e.Reason
	}
	return err.Error()
}

// cors answers the browser's preflight and marks answers readable by the
// allowed origins, as Temporal's codec server samples do.
func cors(origins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(origins, origin)
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			if !allowed {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

// Params are the Module's inputs.
type Params struct {
	fx.In
	Admin         config.Admin
	API           config.API
	Metrics       *metrics.Metrics
	Client        client.Client
	Codec         *payloadcrypt.Codec `optional:"true"`
	Authenticator *auth.Authenticator `optional:"true"`
	Logger        *slog.Logger
}

// Module serves the admin listener for the app's lifetime, in every role:
// ready means the Temporal frontend answers.
var Module = fx.Module("ops",
	fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, p Params) error {
		cfg := p.Admin
		ready := func(ctx context.Context) error {
			_, err := p.Client.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}
		d := Deps{Metrics: p.Metrics, Ready: ready, Pprof: cfg.Pprof, CodecCORSOrigins: cfg.CodecCORSOrigins,
			Authenticator: p.Authenticator, Logger: p.Logger}
		paths := "/metrics /healthz /readyz"
		if p.Codec != nil {
			d.Codec = p.Codec
			paths += " /codec/"
		}
		if cfg.Pprof {
			paths += " /debug/pprof/"
		}
		return httpserve.Run(lc, sd, p.Logger, Handler(d), httpserve.AdminOptions(cfg, p.API), paths)
	}),
)
