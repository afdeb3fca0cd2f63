package config

// Temporal says how to reach the Temporal cluster.
type Temporal struct {
	// Address of the frontend, host:port.
	Address   string `yaml:"address" env:"ADDRESS"`
	Namespace string `yaml:"namespace" env:"NAMESPACE"`
	// TaskQueue is the queue every entity workflow and activity runs on.
	TaskQueue string `yaml:"taskQueue" env:"TASK_QUEUE"`
	// APIKey authenticates to Temporal Cloud (sent as a bearer token; needs TLS).
	APIKey string `yaml:"apiKey" env:"API_KEY"`
	// APIKeyFile holds APIKey (a mounted secret; preferred).
	APIKeyFile string `yaml:"apiKeyFile" env:"API_KEY_FILE"`
	TLS        TLS    `yaml:"tls" envPrefix:"TLS_"`
	// Encryption of the payloads written into Temporal.
	Encryption Encryption `yaml:"encryption" envPrefix:"ENCRYPTION_"`
	// SearchAttributes starts every entity with the custom search attributes
	// ArtifactStateUserId, ArtifactStateArtifactId and
	// ArtifactStateHistoryVersion, so operators can list a user's entities;
	// off keeps user IDs out of Temporal's visibility store (they remain in
	// workflow IDs). `artifactstate migrate` registers them.
	SearchAttributes bool `yaml:"searchAttributes" env:"SEARCH_ATTRIBUTES"`
	// Compression of gRPC requests: gzip (the SDK's default, for slow or
	// metered links such as Temporal Cloud) or none (saves CPU next to the
	// cluster; the dev role uses none).
	Compression string `yaml:"compression" env:"COMPRESSION"`
}

// Encryption encrypts every payload the service writes into Temporal.
type Encryption struct {
	// KeysFile holds the AES-256 keys by ID and the ID of the current one
	// (YAML; see the README). Empty: payloads are not encrypted.
	KeysFile string `yaml:"keysFile" env:"KEYS_FILE"`
}

// TLS configures a client connection (to Temporal, to Cassandra). Enabled with no files uses the
// system roots; CertFile and KeyFile add a client certificate (mTLS).
type TLS struct {
	Enabled    bool   `yaml:"enabled" env:"ENABLED"`
	CAFile     string `yaml:"caFile" env:"CA_FILE"`
	CertFile   string `yaml:"certFile" env:"CERT_FILE"`
	KeyFile    string `yaml:"keyFile" env:"KEY_FILE"`
	ServerName string `yaml:"serverName" env:"SERVER_NAME"`
}

func defaultTemporal() Temporal {
	return Temporal{
		Address:          "127.0.0.1:7233",
		Namespace:        "default",
		TaskQueue:        "artifactstate-entities",
		Compression:      "gzip",
		SearchAttributes: true,
	}
}

func (t Temporal) check(p *Problems) {
	if err := CheckHostPort(t.Address, false); err != nil {
		p.Add("temporal.address", "%v", err)
	}
	if t.Namespace == "" {
		p.Add("temporal.namespace", "must not be empty")
	}
	if t.TaskQueue == "" {
		p.Add("temporal.taskQueue", "must not be empty")
	}
	if t.Compression != "gzip" && t.Compression != "none" {
		p.Add("temporal.compression", "must be gzip or none, got %q", t.Compression)
	}
	if t.APIKey != "" && !t.TLS.Enabled {
		p.Add("temporal.apiKey", "needs temporal.tls.enabled: true (the key must not travel in clear)")
	}
	t.TLS.check(p, "temporal.tls")
	if t.APIKeyFile != "" {
		if t.APIKey != "" {
			p.Add("temporal.apiKeyFile", "set temporal.apiKey or temporal.apiKeyFile, not both")
		}
		if !t.TLS.Enabled {
			p.Add("temporal.apiKeyFile", "needs temporal.tls.enabled: true (the key must not travel in clear)")
		}
	}
	p.file("temporal.apiKeyFile", t.APIKeyFile)
	p.file("temporal.encryption.keysFile", t.Encryption.KeysFile)
}

// check checks TLS settings under the key prefix: cert and key together,
// files that exist, and no file without enabled.
func (t TLS) check(p *Problems, prefix string) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.Add(prefix, "certFile and keyFile go together")
	}
	for _, f := range []struct{ key, path string }{
		{prefix + ".caFile", t.CAFile},
		{prefix + ".certFile", t.CertFile},
		{prefix + ".keyFile", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if !t.Enabled {
			p.Add(f.key, "is set but %s.enabled is false", prefix)
		}
		p.file(f.key, f.path)
	}
}
