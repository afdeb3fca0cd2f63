// Package httpserve runs the process's HTTP servers (the API and the admin
// listener) with the same hardening: read, header, write and idle timeouts,
// a header size bound, optional TLS with certificates reloaded on change,
// and a graceful stop.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
)

// Options bound one server.
type Options struct {
	// Name is the server's name in logs and errors, e.g. "API".
	Name string
	// ConfigKey is the listen address's configuration key, for errors.
	ConfigKey string
	Address   string
	// A client must send its headers within ReadHeaderTimeout and its whole
	// request within ReadTimeout; an answer must be written within
	// WriteTimeout; an idle keep-alive connection is closed after
	// IdleTimeout.
	ReadTimeout, ReadHeaderTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	TLS                                                       config.ServerTLS
	// ShutdownTimeout bounds the wait for in-flight requests on stop.
	ShutdownTimeout time.Duration
}

// APIOptions are the API server's bounds from configuration.
func APIOptions(cfg config.API) Options {
	return Options{
		Name: "API", ConfigKey: "api.listenAddress", Address: cfg.ListenAddress,
		ReadTimeout: cfg.ReadTimeout, ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes, TLS: cfg.TLS, ShutdownTimeout: cfg.ShutdownTimeout,
	}
}

// AdminOptions are the admin listener's: the API's read bounds, and a write
// timeout long enough for a 60 s CPU profile.
func AdminOptions(cfg config.Admin, api config.API) Options {
	o := APIOptions(api)
	o.Name, o.ConfigKey, o.Address, o.TLS = "admin", "admin.listenAddress", cfg.ListenAddress, cfg.TLS
	o.WriteTimeout = 90 * time.Second
	o.ShutdownTimeout = 5 * time.Second
	return o
}

// Server is one HTTP server.
type Server struct {
	opts Options
	tls  bool
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// New prepares a server for h; it loads the TLS certificate, if any.
func New(h http.Handler, o Options) (*Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadTimeout:       o.ReadTimeout,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
	if o.TLS.Enabled() {
		cert, err := tlsfiles.Load(o.TLS.CertFile, o.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s TLS: %w", o.Name, err)
		}
		srv.TLSConfig = tlsfiles.ServerConfig(cert)
	}
	return &Server{opts: o, tls: srv.TLSConfig != nil, srv: srv, done: make(chan error, 1)}, nil
}

// Start listens and serves in the background; Done reports a failure.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("%s %s: %w", s.opts.ConfigKey, s.opts.Address, err)
	}
	s.ln = ln
	go func() {
		var err error
		if s.tls {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// URL is the server's base URL (after Start).
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Done delivers the error the server stopped with (nil after Shutdown).
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops accepting connections and waits, up to ShutdownTimeout,
// for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.opts.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", s.opts.Name, err)
	}
	return nil
}

// Run serves h for the fx app's lifetime; a server that fails stops the app
// with exit code 1.
func Run(lc fx.Lifecycle, sd fx.Shutdowner, logger *slog.Logger, h http.Handler, o Options, paths string) error {
	s, err := New(h, o)
	if err != nil {
		return err
	}
	// Handshake failures and cut-off clients: debug, not stderr noise.
	s.srv.ErrorLog = slog.NewLogLogger(logger.With("server", o.Name).Handler(), slog.LevelDebug)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := s.Start(); err != nil {
				return err
			}
			logger.Info(o.Name+" listening", "address", s.URL(), "paths", paths)
			go func() {
				if err := <-s.Done(); err != nil {
					logger.Error(o.Name+" server failed", "error", err)
					if err := sd.Shutdown(fx.ExitCode(1)); err != nil {
						logger.Error("Cannot shut down", "error", err)
					}
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if err := s.Shutdown(ctx); err != nil {
				return err
			}
			logger.Info(o.Name + " stopped")
			return nil
		},
	})
	return nil
}
