package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artifactstate/artifactstate/internal/cli"
	"github.com/artifactstate/artifactstate/internal/config"
)

func TestDevDefaultsAreValid(t *testing.T) {
	t.Parallel()
	cfg := defaultDevConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The dev section keeps the keys and variables users know (dev.*,
// ARTIFACTSTATE_DEV_*), read from the same file and environment as every
// role's.
func TestDevSectionLoadsFromTheFileAndTheEnvironment(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("dev:\n  dataDir: /tmp/d\n  uiPort: 0\napi:\n  requestTimeout: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := defaultDevConfig()
	if err := config.LoadInto(path, map[string]string{"ARTIFACTSTATE_DEV_IN_MEMORY": "true", "ARTIFACTSTATE_DEV_FRONTEND_PORT": "17233"}, &cfg); err != nil {
		t.Fatal(err)
	}
	want := Dev{DataDir: "/tmp/d", InMemory: true, IP: "127.0.0.1", FrontendPort: 17233}
	if cfg.Dev != want || cfg.API.RequestTimeout.String() != "2s" {
		t.Fatalf("dev %+v, api.requestTimeout %v; want %+v, 2s", cfg.Dev, cfg.API.RequestTimeout, want)
	}
	names, err := config.EnvVarsOf(&cfg)
	if err != nil || !slices.Contains(names, "ARTIFACTSTATE_DEV_IN_MEMORY") || !slices.Contains(names, "ARTIFACTSTATE_TEMPORAL_ADDRESS") {
		t.Fatalf("the variables read: %v (%v)", names, err)
	}
	if err := config.LoadInto("", map[string]string{"ARTIFACTSTATE_DEV_UI_PORT": "soon"}, &cfg); err == nil ||
		!strings.Contains(err.Error(), "ARTIFACTSTATE_DEV_UI_PORT") {
		t.Fatalf("a bad dev variable: %v", err)
	}
}

// The dev section's problems are listed with every other section's.
func TestDevProblemsAreListedWithTheOthers(t *testing.T) {
	t.Parallel()
	cfg := defaultDevConfig()
	cfg.Dev.UIPort = cfg.Dev.FrontendPort
	cfg.Dev.IP = "localhost"
	cfg.Worker.MaxHistoryEvents = 10
	err := cfg.Validate()
	for _, key := range []string{"dev.uiPort", "dev.ip", "worker.maxHistoryEvents"} {
		if err == nil || !strings.Contains(err.Error(), "  - "+key+": ") {
			t.Errorf("%s is not reported: %v", key, err)
		}
	}
}

// Every module of the dev role is given what it asks for, with its worker
// and without (--no-worker).
func TestDevRoleIsWired(t *testing.T) {
	t.Parallel()
	for _, withWorker := range []bool{true, false} {
		cfg := defaultDevConfig()
		if err := cli.ValidateApp(cfg.Config, slog.New(slog.DiscardHandler), devModules(embed(&cfg), withWorker)...); err != nil {
			t.Fatal(err)
		}
	}
}
