package config

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// Cassandra configures the read model the projection writes and the list
// endpoints read. With no hosts there is no read model: the worker does not
// project and the read-model endpoints answer 503.
type Cassandra struct {
	// Hosts are contact points, host or host:port (port defaults to 9042).
	Hosts    []string `yaml:"hosts" env:"HOSTS" envSeparator:","`
	Keyspace string   `yaml:"keyspace" env:"KEYSPACE"`
	// Consistency of reads and writes, e.g. LOCAL_QUORUM, QUORUM, ONE.
	Consistency string `yaml:"consistency" env:"CONSISTENCY"`
	// LocalDC makes the driver prefer this datacenter's nodes.
	LocalDC  string `yaml:"localDC" env:"LOCAL_DC"`
	Username string `yaml:"username" env:"USERNAME"`
	Password string `yaml:"password" env:"PASSWORD"`
	// PasswordFile holds Password (a mounted secret; preferred).
	PasswordFile string `yaml:"passwordFile" env:"PASSWORD_FILE"`
	TLS          TLS    `yaml:"tls" envPrefix:"TLS_"`
	// ConnectTimeout bounds dialing; Timeout bounds each query.
	ConnectTimeout time.Duration `yaml:"connectTimeout" env:"CONNECT_TIMEOUT"`
	Timeout        time.Duration `yaml:"timeout" env:"TIMEOUT"`
	// Replication of the keyspace `migrate` creates: SimpleStrategy with
	// ReplicationFactor, or NetworkTopologyStrategy with Datacenters.
	Replication Replication `yaml:"replication" envPrefix:"REPLICATION_"`
	// Projection tunes the activity that writes the read model.
	Projection Projection `yaml:"projection" envPrefix:"PROJECTION_"`
}

// Enabled reports whether a read model is configured.
func (c Cassandra) Enabled() bool { return len(c.Hosts) > 0 }

// Replication of the read-model keyspace.
type Replication struct {
	Class             string `yaml:"class" env:"CLASS"`
	ReplicationFactor int    `yaml:"replicationFactor" env:"FACTOR"`
	// Datacenters maps datacenter to replica count (NetworkTopologyStrategy);
	// in the environment "dc1:3,dc2:3".
	Datacenters map[string]int `yaml:"datacenters" env:"DATACENTERS" envSeparator:"," envKeyValSeparator:":"`
}

// Projection tunes the projection activity's retries: Cassandra being down
// or slow never fails a write; the projection retries with a backoff growing
// from RetryInitialInterval to RetryMaxInterval, so the read model catches up
// within about RetryMaxInterval of Cassandra's return.
type Projection struct {
	// LocalTimeout bounds the first attempt, made inside the workflow task
	// that changed the state (a local activity); 0 skips it. When it fails,
	// a regular activity on the queue <temporal.taskQueue>-projection
	// retries with the settings below.
	LocalTimeout         time.Duration `yaml:"localTimeout" env:"LOCAL_TIMEOUT"`
	Timeout              time.Duration `yaml:"timeout" env:"TIMEOUT"`
	RetryInitialInterval time.Duration `yaml:"retryInitialInterval" env:"RETRY_INITIAL_INTERVAL"`
	RetryMaxInterval     time.Duration `yaml:"retryMaxInterval" env:"RETRY_MAX_INTERVAL"`
	// RejectedPause is how long an entity waits after the read model
	// rejected a projection (schema missing, permissions) before it tries
	// again, if no new change wakes it first.
	RejectedPause time.Duration `yaml:"rejectedPause" env:"REJECTED_PAUSE"`
}

func defaultCassandra() Cassandra {
	return Cassandra{
		Keyspace:       "artifactstate",
		Consistency:    "LOCAL_QUORUM",
		ConnectTimeout: 5 * time.Second,
		Timeout:        5 * time.Second,
		Replication:    Replication{Class: "SimpleStrategy", ReplicationFactor: 1},
		Projection: Projection{
			LocalTimeout:         2 * time.Second,
			Timeout:              10 * time.Second,
			RetryInitialInterval: time.Second,
			RetryMaxInterval:     30 * time.Second,
			RejectedPause:        10 * time.Minute,
		},
	}
}

var keyspaceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// consistencies are those valid for both reads and writes (ANY is for
// writes only: every read would fail; EACH_QUORUM is not supported for
// reads either).
var consistencies = []string{"ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "LOCAL_ONE"}

func (c Cassandra) check(p *Problems) {
	// Reported sorted by key (the map below has no order).
	var own Problems
	bad := func(key, format string, args ...any) { own.Add("cassandra."+key, format, args...) }
	for _, h := range c.Hosts {
		if h == "" || strings.ContainsAny(h, " /") {
			bad("hosts", "%q is not a host or host:port", h)
		} else if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
			if err := CheckHostPort(h, false); err != nil {
				bad("hosts", "%v", err)
			}
		}
	}
	if !keyspaceName.MatchString(c.Keyspace) {
		bad("keyspace", "must be lower-case letters, digits and _ (starting with a letter, at most 48), got %q", c.Keyspace)
	}
	if !slices.Contains(consistencies, c.Consistency) {
		bad("consistency", "must be one of %s (it serves reads and writes), got %q", strings.Join(consistencies, ", "), c.Consistency)
	}
	if (c.Username == "") != (c.Password == "") {
		bad("username", "username and password go together")
	}
	c.TLS.check(&own, "cassandra.tls")
	for name, d := range map[string]time.Duration{
		"connectTimeout": c.ConnectTimeout, "timeout": c.Timeout, "projection.timeout": c.Projection.Timeout,
		"projection.retryInitialInterval": c.Projection.RetryInitialInterval, "projection.retryMaxInterval": c.Projection.RetryMaxInterval,
		"projection.rejectedPause": c.Projection.RejectedPause,
	} {
		if d <= 0 {
			bad(name, "must be a positive duration, got %v", d)
		}
	}
	if c.Projection.LocalTimeout < 0 || c.Projection.LocalTimeout > 5*time.Second {
		bad("projection.localTimeout", "must be between 0 (no local attempt) and 5s (it holds the workflow task open), got %v", c.Projection.LocalTimeout)
	}
	if c.Projection.RetryMaxInterval < c.Projection.RetryInitialInterval {
		bad("projection.retryMaxInterval", "must not be below projection.retryInitialInterval")
	}
	switch c.Replication.Class {
	case "SimpleStrategy":
		if c.Replication.ReplicationFactor < 1 {
			bad("replication.replicationFactor", "must be at least 1, got %d", c.Replication.ReplicationFactor)
		}
	case "NetworkTopologyStrategy":
		if len(c.Replication.Datacenters) == 0 {
			bad("replication.datacenters", "NetworkTopologyStrategy needs at least one datacenter")
		}
		for dc, n := range c.Replication.Datacenters {
			if !datacenterName.MatchString(dc) || n < 1 {
				bad("replication.datacenters", "%q: %d is not a datacenter name with a replica count of at least 1", dc, n)
			}
		}
	default:
		bad("replication.class", "must be SimpleStrategy or NetworkTopologyStrategy, got %q", c.Replication.Class)
	}
	slices.Sort(own.lines)
	p.lines = append(p.lines, own.lines...)
}

var datacenterName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
