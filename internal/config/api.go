package config

import "time"

// API configures the HTTP endpoint.
type API struct {
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// RequestTimeout bounds each request's calls to Temporal (504 past it).
	RequestTimeout time.Duration `yaml:"requestTimeout" env:"REQUEST_TIMEOUT"`
	// MaxBodyBytes is the largest request body accepted (413 past it).
	MaxBodyBytes int64 `yaml:"maxBodyBytes" env:"MAX_BODY_BYTES"`
	// RetryAfter is sent in the Retry-After header of 503 answers.
	RetryAfter time.Duration `yaml:"retryAfter" env:"RETRY_AFTER"`
	// ShutdownTimeout bounds the wait for in-flight requests on shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout" env:"SHUTDOWN_TIMEOUT"`
	// HTTP server bounds: a slow client is cut off rather than holding a
	// connection and a goroutine as long as it likes.
	ReadTimeout       time.Duration `yaml:"readTimeout" env:"READ_TIMEOUT"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout" env:"READ_HEADER_TIMEOUT"`
	WriteTimeout      time.Duration `yaml:"writeTimeout" env:"WRITE_TIMEOUT"`
	IdleTimeout       time.Duration `yaml:"idleTimeout" env:"IDLE_TIMEOUT"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes" env:"MAX_HEADER_BYTES"`
	// TLS serves the API over TLS.
	TLS       ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	RateLimit RateLimit `yaml:"rateLimit" envPrefix:"RATE_LIMIT_"`
	// MaxInFlightTemporalCalls bounds the API's concurrent calls to Temporal
	// in this process; past it up to MaxQueuedTemporalCalls requests wait
	// their turn (in order, within their deadline), and past those requests
	// get 503 with Retry-After at once instead of piling onto a saturated
	// Temporal until they time out. Size it from the measured capacity
	// (docs/benchmarks.md, "Admission control"). 0: no bound.
	MaxInFlightTemporalCalls int `yaml:"maxInFlightTemporalCalls" env:"MAX_IN_FLIGHT_TEMPORAL_CALLS"`
	MaxQueuedTemporalCalls   int `yaml:"maxQueuedTemporalCalls" env:"MAX_QUEUED_TEMPORAL_CALLS"`
	// The fan-out call (one command on one artifact for many users): at
	// most MaxFanoutUsers users per call, FanoutConcurrency of its items
	// in flight at once, the whole call bounded by FanoutTimeout (each item
	// still by RequestTimeout), its HTTP body by MaxFanoutBodyBytes.
	MaxFanoutUsers     int           `yaml:"maxFanoutUsers" env:"MAX_FANOUT_USERS"`
	FanoutConcurrency  int           `yaml:"fanoutConcurrency" env:"FANOUT_CONCURRENCY"`
	FanoutTimeout      time.Duration `yaml:"fanoutTimeout" env:"FANOUT_TIMEOUT"`
	MaxFanoutBodyBytes int64         `yaml:"maxFanoutBodyBytes" env:"MAX_FANOUT_BODY_BYTES"`
}

// Bounds of the fan-out settings.
const (
	// MaxFanoutUsersLimit caps api.maxFanoutUsers: a call of that many
	// longest user IDs, and its answer, stay well within gRPC's default
	// message size (4 MiB).
	MaxFanoutUsersLimit = 10000
	// fanoutUserIDRoom is the body room one user ID of the longest kind
	// takes in a fan-out request written without escapes: 256 bytes
	// (entityid.MaxUserIDBytes), its quotes and a comma.
	fanoutUserIDRoom = 256 + 3
	// fanoutBodyOverhead is the room of the rest of a fan-out request.
	fanoutBodyOverhead = 256
)

// ServerTLS makes a listener serve TLS. The files are re-read when they
// change, so a rotated certificate is served without a restart.
type ServerTLS struct {
	CertFile string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile  string `yaml:"keyFile" env:"KEY_FILE"`
}

// Enabled reports whether TLS is configured.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// RateLimit bounds request rates with token buckets: per client (the
// authenticated subject, else the remote IP) and for the whole process.
// A rate of 0 turns that bucket off. Requests over a limit get 429 with
// Retry-After.
type RateLimit struct {
	PerClient      float64 `yaml:"perClient" env:"PER_CLIENT"`
	PerClientBurst int     `yaml:"perClientBurst" env:"PER_CLIENT_BURST"`
	Global         float64 `yaml:"global" env:"GLOBAL"`
	GlobalBurst    int     `yaml:"globalBurst" env:"GLOBAL_BURST"`
}

func defaultAPI() API {
	return API{
		ListenAddress:            ":8082",
		RequestTimeout:           5 * time.Second,
		MaxBodyBytes:             16 << 10,
		RetryAfter:               time.Second,
		ShutdownTimeout:          15 * time.Second,
		ReadTimeout:              10 * time.Second,
		ReadHeaderTimeout:        5 * time.Second,
		WriteTimeout:             30 * time.Second,
		IdleTimeout:              2 * time.Minute,
		MaxHeaderBytes:           32 << 10,
		MaxInFlightTemporalCalls: 64,
		MaxQueuedTemporalCalls:   256,
		MaxFanoutUsers:           1000,
		FanoutConcurrency:        32,
		FanoutTimeout:            time.Minute,
		// Room for 1000 user IDs of 256 bytes even when a JSON encoder
		// escapes every byte (\u003c is 6 bytes for "<").
		MaxFanoutBodyBytes: 2 << 20,
	}
}

func (a API) check(p *Problems) {
	a.TLS.check(p, "api.tls")
	if err := CheckHostPort(a.ListenAddress, true); err != nil {
		p.Add("api.listenAddress", "%v", err)
	}
	p.positive("api.requestTimeout", a.RequestTimeout)
	p.positive("api.retryAfter", a.RetryAfter)
	p.positive("api.shutdownTimeout", a.ShutdownTimeout)
	p.positive("api.readTimeout", a.ReadTimeout)
	p.positive("api.readHeaderTimeout", a.ReadHeaderTimeout)
	p.positive("api.writeTimeout", a.WriteTimeout)
	p.positive("api.idleTimeout", a.IdleTimeout)
	if a.WriteTimeout <= a.RequestTimeout {
		p.Add("api.writeTimeout", "must be longer than api.requestTimeout (%v), or answers would be cut off, got %v", a.RequestTimeout, a.WriteTimeout)
	}
	if a.MaxHeaderBytes < 4096 {
		p.Add("api.maxHeaderBytes", "must be at least 4096, got %d", a.MaxHeaderBytes)
	}
	if a.MaxBodyBytes < 256 {
		p.Add("api.maxBodyBytes", "must be at least 256, got %d", a.MaxBodyBytes)
	}
	if a.MaxInFlightTemporalCalls < 0 {
		p.Add("api.maxInFlightTemporalCalls", "must be 0 (no bound) or positive, got %d", a.MaxInFlightTemporalCalls)
	}
	if a.MaxQueuedTemporalCalls < 0 {
		p.Add("api.maxQueuedTemporalCalls", "must be 0 (no queue: 503 at once past api.maxInFlightTemporalCalls) or positive, got %d", a.MaxQueuedTemporalCalls)
	}
	a.checkFanout(p)
	for _, b := range []struct {
		key   string
		rate  float64
		burst int
	}{
		{"api.rateLimit.perClient", a.RateLimit.PerClient, a.RateLimit.PerClientBurst},
		{"api.rateLimit.global", a.RateLimit.Global, a.RateLimit.GlobalBurst},
	} {
		if b.rate < 0 {
			p.Add(b.key, "must be 0 (off) or a positive rate per second, got %v", b.rate)
		}
		if b.rate > 0 && b.burst < 1 {
			p.Add(b.key+"Burst", "must be at least 1 when %s is set, got %d", b.key, b.burst)
		}
	}
}

// checkFanout checks the fan-out's keys: a user count the body limit has
// room for, a concurrency that one call cannot use up the process's
// Temporal calls with, and a deadline.
func (a API) checkFanout(p *Problems) {
	if a.MaxFanoutUsers < 1 || a.MaxFanoutUsers > MaxFanoutUsersLimit {
		p.Add("api.maxFanoutUsers", "must be from 1 to %d, got %d", MaxFanoutUsersLimit, a.MaxFanoutUsers)
	}
	if a.FanoutConcurrency < 1 {
		p.Add("api.fanoutConcurrency", "must be at least 1, got %d", a.FanoutConcurrency)
	} else if a.MaxInFlightTemporalCalls > 0 && a.FanoutConcurrency > a.MaxInFlightTemporalCalls {
		p.Add("api.fanoutConcurrency", "must be at most api.maxInFlightTemporalCalls (%d), or one fan-out would take every Temporal call of the process, got %d",
			a.MaxInFlightTemporalCalls, a.FanoutConcurrency)
	}
	p.positive("api.fanoutTimeout", a.FanoutTimeout)
	if room := int64(max(a.MaxFanoutUsers, 1))*fanoutUserIDRoom + fanoutBodyOverhead; a.MaxFanoutBodyBytes < room {
		p.Add("api.maxFanoutBodyBytes", "must leave room for api.maxFanoutUsers (%d) user IDs of 256 bytes, at least %d, got %d",
			a.MaxFanoutUsers, room, a.MaxFanoutBodyBytes)
	}
}

// check checks a listener's TLS under the key prefix: cert and key
// together, files that exist.
func (t ServerTLS) check(p *Problems, prefix string) {
	p.file(prefix+".certFile", t.CertFile)
	p.file(prefix+".keyFile", t.KeyFile)
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.Add(prefix, "certFile and keyFile go together")
	}
}

// GRPC configures the gRPC API of the api and dev roles (internal/grpcapi).
// Its calls share api.requestTimeout, api.retryAfter and api.shutdownTimeout
// with the HTTP API.
type GRPC struct {
	// ListenAddress of the gRPC API; empty: no gRPC API.
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// TLS serves the gRPC API over TLS (certificate reloaded on change).
	TLS ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	// ClientCAFile (with TLS) requires every client to present a
	// certificate signed by one of its CAs (mTLS).
	ClientCAFile string `yaml:"clientCAFile" env:"CLIENT_CA_FILE"`
}

func (g GRPC) check(p *Problems) {
	if g.ListenAddress != "" {
		if err := CheckHostPort(g.ListenAddress, true); err != nil {
			p.Add("grpc.listenAddress", "%v (or empty: no gRPC API)", err)
		}
	}
	g.TLS.check(p, "grpc.tls")
	if g.ClientCAFile != "" {
		if !g.TLS.Enabled() {
			p.Add("grpc.clientCAFile", "needs grpc.tls (client certificates travel over TLS)")
		}
		p.file("grpc.clientCAFile", g.ClientCAFile)
	}
}
