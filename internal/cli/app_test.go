package cli

import (
	"log/slog"
	"testing"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Every module of a role is given what it asks for: each takes the
// sections of the configuration it reads, and a section missing from the
// app would stop the role at start.
func TestRolesAreWired(t *testing.T) {
	t.Parallel()
	for role, modules := range map[string][]fx.Option{"api": apiModules, "worker": workerModules} {
		if err := ValidateApp(config.Default(), slog.New(slog.DiscardHandler), modules...); err != nil {
			t.Errorf("%s: %v", role, err)
		}
	}
}
