package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	require.NoError(t, Default().Validate())
}

func TestFileThenEnvironmentOverrideDefaults(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
temporal:
  address: temporal.example:7233
  namespace: prod
api:
  requestTimeout: 2s
worker:
  maxHistoryEvents: 500
`), 0o600))
	cfg, err := Load(path, map[string]string{
		"ARTIFACTSTATE_TEMPORAL_NAMESPACE":   "from-env",
		"ARTIFACTSTATE_WORKER_STOP_TIMEOUT":  "3s",
		"ARTIFACTSTATE_TEMPORAL_TLS_ENABLED": "true",
	})
	require.NoError(t, err)
	require.Equal(t, "temporal.example:7233", cfg.Temporal.Address)
	require.Equal(t, "from-env", cfg.Temporal.Namespace)
	require.Equal(t, 2*time.Second, cfg.API.RequestTimeout)
	require.Equal(t, 500, cfg.Worker.MaxHistoryEvents)
	require.Equal(t, 3*time.Second, cfg.Worker.StopTimeout)
	require.True(t, cfg.Temporal.TLS.Enabled)
	require.Equal(t, ":8082", cfg.API.ListenAddress, "untouched keys keep their default")
	require.NoError(t, cfg.Validate())
}

func TestUnknownFileKeyIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte("temporal:\n  adress: x:1\n"), 0o600))
	_, err := Load(path, map[string]string{})
	require.ErrorContains(t, err, "adress")
}

func TestBadEnvironmentValueIsAnError(t *testing.T) {
	t.Parallel()
	_, err := Load("", map[string]string{"ARTIFACTSTATE_API_REQUEST_TIMEOUT": "soon"})
	require.ErrorContains(t, err, "ARTIFACTSTATE_API_REQUEST_TIMEOUT")
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Log.Level = "loud"
	cfg.Temporal.Address = "nohost"
	cfg.Temporal.TaskQueue = ""
	cfg.Temporal.APIKey = "secret"
	cfg.API.RequestTimeout = 0
	cfg.Worker.MaxHistoryEvents = 10
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"log.level", "temporal.address", "temporal.taskQueue", "temporal.apiKey",
		"api.requestTimeout", "worker.maxHistoryEvents"} {
		require.Contains(t, err.Error(), "  - "+key+": ")
	}
}

func TestRedactedMasksSecrets(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Temporal.APIKey = "secret"
	require.Equal(t, "****", cfg.Redacted().Temporal.APIKey)
	require.Equal(t, "secret", cfg.Temporal.APIKey, "the original is untouched")
}

func TestEnvVarsNamesEveryLeaf(t *testing.T) {
	t.Parallel()
	names, err := EnvVars()
	require.NoError(t, err)
	for _, want := range []string{"ARTIFACTSTATE_TEMPORAL_ADDRESS", "ARTIFACTSTATE_TEMPORAL_TLS_CA_FILE",
		"ARTIFACTSTATE_API_LISTEN_ADDRESS", "ARTIFACTSTATE_WORKER_MAX_HISTORY_EVENTS"} {
		require.True(t, slices.Contains(names, want), "missing %s in %v", want, names)
	}
	for _, n := range names {
		require.True(t, strings.HasPrefix(n, EnvPrefix), n)
	}
}

func TestSecurityKeysAreValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	cfg := Default()
	cfg.Auth.Enabled = true
	cfg.Auth.JWKSURL = "http://idp.example/jwks"
	cfg.Privacy.UserIDs = "hash"
	cfg.API.RateLimit = RateLimit{PerClient: 10}
	cfg.API.WriteTimeout = cfg.API.RequestTimeout
	cfg.API.TLS = ServerTLS{CertFile: file}
	cfg.Admin.TLS = ServerTLS{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: file}
	cfg.Temporal.APIKeyFile = file
	cfg.Tracing.Insecure, cfg.Tracing.CAFile = true, file
	cfg.API.MaxHeaderBytes = 100
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"auth.jwksURL", "auth.issuer", "auth.audience", "privacy.hashKeyFile",
		"api.rateLimit.perClientBurst", "api.writeTimeout", "api.tls", "admin.tls.certFile", "temporal.apiKeyFile",
		"tracing.insecure", "api.maxHeaderBytes"} {
		require.Contains(t, err.Error(), "  - "+key+": ")
	}

	cfg = Default()
	cfg.Auth.Enabled = true
	require.ErrorContains(t, cfg.Validate(), "auth.enabled: needs auth.jwksURL, auth.jwksFile or auth.apiKeysFile")
	cfg.Auth.APIKeysFile = file
	require.NoError(t, cfg.Validate(), "API keys alone need no issuer")
}

func TestSecretsComeFromFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(path, []byte("s3cret\n"), 0o600))
	cfg, err := Load("", map[string]string{"ARTIFACTSTATE_CASSANDRA_USERNAME": "app", "ARTIFACTSTATE_CASSANDRA_PASSWORD_FILE": path})
	require.NoError(t, err)
	require.Equal(t, "s3cret", cfg.Cassandra.Password, "the trailing newline is not part of the secret")
	require.Equal(t, "****", cfg.Redacted().Cassandra.Password)
	_, err = Load("", map[string]string{"ARTIFACTSTATE_CASSANDRA_PASSWORD": "x", "ARTIFACTSTATE_CASSANDRA_PASSWORD_FILE": path})
	require.ErrorContains(t, err, "not both")
	_, err = Load("", map[string]string{"ARTIFACTSTATE_CASSANDRA_PASSWORD_FILE": path + ".missing"})
	require.ErrorContains(t, err, "cassandra.passwordFile")
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		":8082": "127.0.0.1:8082", "0.0.0.0:9090": "127.0.0.1:9090", "[::]:8082": "127.0.0.1:8082",
		"127.0.0.1:8082": "127.0.0.1:8082", "10.0.0.5:8082": "10.0.0.5:8082", "localhost:1": "localhost:1",
	} {
		require.Equal(t, want, Loopback(in), in)
	}
}

// Cassandra settings that cannot work are refused at start-up: ANY fails
// every read, and TLS files are checked as Temporal's are.
func TestCassandraSettingsThatCannotWork(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Cassandra.Hosts = []string{"127.0.0.1"}
	cfg.Cassandra.Consistency = "ANY"
	cfg.Cassandra.TLS.CAFile = "/no/such/ca.pem"
	cfg.Cassandra.TLS.CertFile = "/no/such/cert.pem"
	cfg.Cassandra.Projection.LocalTimeout = time.Minute
	cfg.Worker.PollerBehavior = "eager"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"cassandra.consistency: must be one of",
		"cassandra.tls: certFile and keyFile go together",
		"cassandra.tls.caFile: is set but cassandra.tls.enabled is false",
		"cassandra.tls.caFile: stat /no/such/ca.pem: no such file or directory",
		"cassandra.projection.localTimeout: must be between 0",
		"worker.pollerBehavior: must be autoscaling or simple",
	} {
		require.Contains(t, err.Error(), want)
	}
}

// The gRPC listener and its TLS settings are checked like the others; an
// empty address turns the gRPC API off.
func TestGRPCSettings(t *testing.T) {
	t.Parallel()
	cfg := Default()
	require.Equal(t, ":8083", cfg.GRPC.ListenAddress)
	cfg.GRPC.ListenAddress = ""
	require.NoError(t, cfg.Validate(), "empty: no gRPC API")

	cfg.GRPC.ListenAddress = cfg.API.ListenAddress
	cfg.GRPC.TLS.CertFile = "/no/such/cert.pem"
	cfg.GRPC.ClientCAFile = "/no/such/ca.pem"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"grpc.listenAddress: \":8082\" is api.listenAddress too",
		"grpc.tls: certFile and keyFile go together",
		"grpc.clientCAFile: stat /no/such/ca.pem: no such file or directory",
	} {
		require.Contains(t, err.Error(), want)
	}
	cfg = Default()
	cfg.GRPC.ListenAddress = "nope"
	cfg.GRPC.ClientCAFile = "/no/such/ca.pem"
	err = cfg.Validate()
	require.Error(t, err)
	require.Contains(t, err.Error(), `grpc.listenAddress: must be host:port, got "nope"`)
	require.Contains(t, err.Error(), "grpc.clientCAFile: needs grpc.tls")
}

// An fx app is supplied every section on its own: none may be missing, or
// a module asking for it would not start.
func TestSectionsAreEverySection(t *testing.T) {
	t.Parallel()
	sections := Default().Sections()
	fields := reflect.TypeOf(Config{})
	require.Len(t, sections, fields.NumField())
	for i := range fields.NumField() {
		require.Equal(t, fields.Field(i).Type, reflect.TypeOf(sections[i]), "section %d", i)
	}
}

// extended is a binary's configuration with a section of its own.
type extended struct {
	Config `yaml:",inline"`
	Extra  struct {
		Port int `yaml:"port" env:"PORT"`
	} `yaml:"extra" envPrefix:"EXTRA_"`
}

func (e *extended) Validate() error { return e.Config.Validate() }

// A binary reads its own section from the same file and environment, with
// the same rules: unknown keys are errors, bad variables are named.
func TestExtendedConfigurationLoadsItsOwnSection(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte("temporal:\n  namespace: prod\nextra:\n  port: 7\n"), 0o600))
	cfg := extended{Config: Default()}
	require.NoError(t, LoadInto(path, map[string]string{"ARTIFACTSTATE_WORKER_STOP_TIMEOUT": "3s"}, &cfg))
	require.Equal(t, "prod", cfg.Temporal.Namespace)
	require.Equal(t, 7, cfg.Extra.Port)
	require.Equal(t, 3*time.Second, cfg.Worker.StopTimeout)
	require.NoError(t, LoadInto("", map[string]string{"ARTIFACTSTATE_EXTRA_PORT": "8"}, &cfg))
	require.Equal(t, 8, cfg.Extra.Port)

	require.NoError(t, os.WriteFile(path, []byte("extra:\n  prot: 7\n"), 0o600))
	require.ErrorContains(t, LoadInto(path, map[string]string{}, &extended{Config: Default()}), "prot")
	require.ErrorContains(t, LoadInto("", map[string]string{"ARTIFACTSTATE_EXTRA_PORT": "x"}, &extended{Config: Default()}),
		"ARTIFACTSTATE_EXTRA_PORT")
	names, err := EnvVarsOf(&cfg)
	require.NoError(t, err)
	require.Contains(t, names, "ARTIFACTSTATE_EXTRA_PORT")
	require.Contains(t, names, "ARTIFACTSTATE_TEMPORAL_ADDRESS")
}

// Under temporal-worker-controller the worker's version comes from the
// variables the controller sets, unless ours name one.
func TestVersioningFromTheWorkerController(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", map[string]string{ControllerDeploymentNameEnv: "prod/artifactstate-worker", ControllerBuildIDEnv: "img-1a2b"})
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Worker.Versioning; v.DeploymentName != "prod/artifactstate-worker" || v.BuildID != "img-1a2b" {
		t.Fatalf("versioning %+v, want the controller's", v)
	}
	cfg, err = Load("", map[string]string{ControllerDeploymentNameEnv: "prod/artifactstate-worker", ControllerBuildIDEnv: "img-1a2b",
		"ARTIFACTSTATE_WORKER_VERSIONING_DEPLOYMENT_NAME": "mine", "ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID": "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Worker.Versioning; v.DeploymentName != "mine" || v.BuildID != "b1" {
		t.Fatalf("versioning %+v, want ours", v)
	}
}

// The fan-out's keys are checked together: the body limit must hold the
// most user IDs, one call may not take every Temporal call.
func TestFanoutKeysAreValidated(t *testing.T) {
	t.Parallel()
	require.NoError(t, Default().Validate())
	cfg := Default()
	cfg.API.MaxFanoutUsers = MaxFanoutUsersLimit + 1
	cfg.API.FanoutConcurrency = cfg.API.MaxInFlightTemporalCalls + 1
	cfg.API.FanoutTimeout = 0
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"api.maxFanoutUsers", "api.fanoutConcurrency", "api.fanoutTimeout", "api.maxFanoutBodyBytes"} {
		require.Contains(t, err.Error(), "  - "+key+": ")
	}

	cfg = Default()
	cfg.API.MaxFanoutUsers = 9000
	require.ErrorContains(t, cfg.Validate(), "api.maxFanoutBodyBytes: must leave room for api.maxFanoutUsers (9000) user IDs of 256 bytes, at least 2331256, got 2097152")
	cfg.API.MaxFanoutBodyBytes = 4 << 20
	cfg.API.MaxInFlightTemporalCalls = 0
	cfg.API.FanoutConcurrency = 9000
	require.NoError(t, cfg.Validate(), "no bound on Temporal calls: any concurrency")
}
