package main

import (
	"net"

	"github.com/artifactstate/artifactstate/internal/config"
)

// devConfig is the dev command's configuration: every role's (it runs them
// all) and the dev section, its embedded Temporal server's, read from the
// same file (key dev) and environment (ARTIFACTSTATE_DEV_*).
type devConfig struct {
	config.Config `yaml:",inline"`
	Dev           Dev `yaml:"dev" envPrefix:"DEV_"`
}

// Dev configures the embedded Temporal server of the dev role.
type Dev struct {
	// DataDir holds the SQLite database, so a restart keeps every entity.
	DataDir string `yaml:"dataDir" env:"DATA_DIR"`
	// InMemory keeps everything in memory instead (lost on exit).
	InMemory bool `yaml:"inMemory" env:"IN_MEMORY"`
	// IP the embedded frontend and Web UI listen on.
	IP           string `yaml:"ip" env:"IP"`
	FrontendPort int    `yaml:"frontendPort" env:"FRONTEND_PORT"`
	// UIPort is the Web UI's port; 0 disables the UI.
	UIPort int `yaml:"uiPort" env:"UI_PORT"`
	// ServerMetricsAddress, when set, serves the embedded Temporal server's
	// own Prometheus metrics on this host:port (path /metrics).
	ServerMetricsAddress string `yaml:"serverMetricsAddress" env:"SERVER_METRICS_ADDRESS"`
	// Expose lets the API and admin listeners bind every interface. Without
	// it dev binds them to loopback (a laptop on a shared network exposes
	// nothing).
	Expose bool `yaml:"expose" env:"EXPOSE"`
}

func defaultDevConfig() devConfig {
	return devConfig{Config: config.Default(),
		Dev: Dev{DataDir: ".artifactstate", IP: "127.0.0.1", FrontendPort: 7233, UIPort: 8233}}
}

// Validate reports every problem of the roles' sections and the dev
// section at once.
func (c *devConfig) Validate() error {
	var p config.Problems
	c.Config.Check(&p)
	c.Dev.check(&p)
	return p.Err()
}

func (d Dev) check(p *config.Problems) {
	if !d.InMemory && d.DataDir == "" {
		p.Add("dev.dataDir", "must not be empty unless dev.inMemory is true")
	}
	if net.ParseIP(d.IP) == nil {
		p.Add("dev.ip", "must be an IP address, got %q", d.IP)
	}
	if d.FrontendPort < 1 || d.FrontendPort > 65535 {
		p.Add("dev.frontendPort", "must be a port number, got %d", d.FrontendPort)
	}
	if d.ServerMetricsAddress != "" {
		if err := config.CheckHostPort(d.ServerMetricsAddress, false); err != nil {
			p.Add("dev.serverMetricsAddress", "%v", err)
		}
	}
	if d.UIPort < 0 || d.UIPort > 65535 || d.UIPort == d.FrontendPort {
		p.Add("dev.uiPort", "must be 0 (no UI) or a port number other than dev.frontendPort, got %d", d.UIPort)
	}
}
