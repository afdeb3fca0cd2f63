package config

// Admin configures the admin listener every role opens beside its work:
// /metrics, /healthz, /readyz, /debug/pprof/ (if Pprof) and the payload codec
// (/codec/, if temporal.encryption.keysFile is set). The API port serves
// none of these but health.
type Admin struct {
	ListenAddress string `yaml:"listenAddress" env:"LISTEN_ADDRESS"`
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool `yaml:"pprof" env:"PPROF"`
	// TLS serves the admin listener over TLS.
	TLS ServerTLS `yaml:"tls" envPrefix:"TLS_"`
	// CodecCORSOrigins may call the codec from a browser: the Temporal Web
	// UI's origin, e.g. https://temporal-ui.example.com.
	CodecCORSOrigins []string `yaml:"codecCORSOrigins" env:"CODEC_CORS_ORIGINS" envSeparator:","`
}

func (a Admin) check(p *Problems) {
	a.TLS.check(p, "admin.tls")
	if err := CheckHostPort(a.ListenAddress, true); err != nil {
		p.Add("admin.listenAddress", "%v", err)
	}
}
