// Package config is the one typed configuration of every role of the binary:
// defaults, then an optional YAML file, then ARTIFACTSTATE_* environment
// variables, then command-line flags; validated before anything dials out.
//
// Each section (one per role or concern, a file each) holds its keys, its
// defaults and its own checks; Config adds the checks across sections. An
// fx app is supplied every section on its own (Sections), so a module asks
// for the part it reads, never the whole.
package config

import (
	"net"
	"strings"
)

// EnvPrefix starts the name of every environment variable the config reads.
const EnvPrefix = "ARTIFACTSTATE_"

// Config is the whole configuration of the product's roles. The YAML keys
// and environment variables are listed in the README's configuration
// reference; the dev role's own section (dev.*) belongs to the development
// binary, which loads it beside Config (Extended).
type Config struct {
	Log       Log       `yaml:"log" envPrefix:"LOG_"`
	Temporal  Temporal  `yaml:"temporal" envPrefix:"TEMPORAL_"`
	API       API       `yaml:"api" envPrefix:"API_"`
	GRPC      GRPC      `yaml:"grpc" envPrefix:"GRPC_"`
	Worker    Worker    `yaml:"worker" envPrefix:"WORKER_"`
	Cassandra Cassandra `yaml:"cassandra" envPrefix:"CASSANDRA_"`
	Admin     Admin     `yaml:"admin" envPrefix:"ADMIN_"`
	Tracing   Tracing   `yaml:"tracing" envPrefix:"TRACING_"`
	Auth      Auth      `yaml:"auth" envPrefix:"AUTH_"`
	Privacy   Privacy   `yaml:"privacy" envPrefix:"PRIVACY_"`
}

// Default returns the configuration used where nothing else is said.
func Default() Config {
	return Config{
		Log:       Log{Level: "info"},
		Temporal:  defaultTemporal(),
		API:       defaultAPI(),
		GRPC:      GRPC{ListenAddress: ":8083"},
		Worker:    defaultWorker(),
		Cassandra: defaultCassandra(),
		Admin:     Admin{ListenAddress: ":9090"},
		Tracing:   Tracing{SampleRatio: 1, ServiceName: "artifactstate"},
		Auth:      defaultAuth(),
		Privacy:   Privacy{UserIDs: "raw"},
	}
}

// Sections are the sections of c, each on its own, for an fx app to supply
// (fx.Supply(c.Sections()...)): a module takes the sections it reads.
func (c Config) Sections() []any {
	return []any{c.Log, c.Temporal, c.API, c.GRPC, c.Worker, c.Cassandra, c.Admin, c.Tracing, c.Auth, c.Privacy}
}

// Validate reports every problem at once, one per line, naming the YAML key.
func (c Config) Validate() error {
	var p Problems
	c.Check(&p)
	return p.Err()
}

// Check adds the problems of every section, and of how the sections fit
// together, to p.
func (c Config) Check(p *Problems) {
	c.Log.check(p)
	c.Temporal.check(p)
	c.API.check(p)
	c.GRPC.check(p)
	c.Worker.check(p)
	c.Cassandra.check(p)
	c.Admin.check(p)
	c.Tracing.check(p)
	c.Auth.check(p)
	c.Privacy.check(p)
	// The listeners of one process need ports of their own.
	if g := c.GRPC.ListenAddress; g != "" && g == c.API.ListenAddress && CheckHostPort(g, true) == nil {
		p.Add("grpc.listenAddress", "%q is api.listenAddress too; the gRPC API needs a port of its own", g)
	}
	if CheckHostPort(c.Admin.ListenAddress, true) == nil {
		if _, port, _ := net.SplitHostPort(c.Admin.ListenAddress); port != "0" && strings.HasSuffix(c.API.ListenAddress, ":"+port) {
			p.Add("admin.listenAddress", "must be another port than api.listenAddress (the admin endpoints stay off the public port)")
		}
	}
}

// Redacted returns a copy safe to log: secrets are masked.
func (c Config) Redacted() Config {
	if c.Temporal.APIKey != "" {
		c.Temporal.APIKey = "****"
	}
	if c.Cassandra.Password != "" {
		c.Cassandra.Password = "****"
	}
	return c
}
