package devserver

import (
	"context"
	"log/slog"

	"go.uber.org/fx"
)

// Module runs the embedded server for the app's lifetime. List it before the
// modules that use Temporal: fx runs module invokes in order, so the server
// starts before the worker polls and stops after it.
func Module(opts Options) fx.Option {
	return fx.Module("devserver",
		fx.Provide(func() (*Server, error) { return New(opts) }),
		fx.Invoke(func(lc fx.Lifecycle, s *Server, logger *slog.Logger) {
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					if err := s.Start(); err != nil {
						return err
					}
					store := "in memory (lost on exit)"
					if opts.DatabaseFile != "" {
						store = opts.DatabaseFile
					}
					logger.Info("Temporal server running", "frontend", s.FrontendAddress(), "store", store)
					if ui := s.UIAddress(); ui != "" {
						logger.Info("Temporal Web UI running", "url", ui)
					}
					return nil
				},
				OnStop: func(context.Context) error {
					err := s.Stop()
					logger.Info("Temporal server stopped")
					return err
				},
			})
		}),
	)
}
