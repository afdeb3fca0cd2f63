package config

// Tracing configures OpenTelemetry tracing: off unless an OTLP endpoint is
// set.
type Tracing struct {
	// OTLPEndpoint is the OTLP/gRPC collector, host:port; empty: no tracing.
	OTLPEndpoint string `yaml:"otlpEndpoint" env:"OTLP_ENDPOINT"`
	// Insecure sends spans without TLS.
	Insecure bool `yaml:"insecure" env:"INSECURE"`
	// CAFile verifies the collector (system roots when empty); CertFile and
	// KeyFile are a client certificate (mTLS).
	CAFile   string `yaml:"caFile" env:"CA_FILE"`
	CertFile string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile  string `yaml:"keyFile" env:"KEY_FILE"`
	// SampleRatio is the share of new traces recorded, 0 to 1.
	SampleRatio float64 `yaml:"sampleRatio" env:"SAMPLE_RATIO"`
	// ServiceName names this service in traces.
	ServiceName string `yaml:"serviceName" env:"SERVICE_NAME"`
}

func (t Tracing) check(p *Problems) {
	if t.OTLPEndpoint != "" {
		if err := CheckHostPort(t.OTLPEndpoint, false); err != nil {
			p.Add("tracing.otlpEndpoint", "%v", err)
		}
	}
	p.file("tracing.caFile", t.CAFile)
	p.file("tracing.certFile", t.CertFile)
	p.file("tracing.keyFile", t.KeyFile)
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.Add("tracing", "certFile and keyFile go together")
	}
	if t.Insecure && (t.CAFile != "" || t.CertFile != "") {
		p.Add("tracing.insecure", "contradicts tracing.caFile/certFile")
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		p.Add("tracing.sampleRatio", "must be between 0 and 1, got %v", t.SampleRatio)
	}
	if t.ServiceName == "" {
		p.Add("tracing.serviceName", "must not be empty")
	}
}
