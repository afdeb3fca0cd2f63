package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
	"gopkg.in/yaml.v3"
)

// Extended is a configuration loaded as Config is: *Config itself, or a
// struct that embeds Config with `yaml:",inline"` beside sections of its
// own, tagged like Config's (the dev command's embedded server, in the
// development module), so that a binary reads its own keys from the same
// file and environment.
type Extended interface {
	// Root is the Config part.
	Root() *Config
	// Validate reports every problem of the whole.
	Validate() error
}

// Root is c: a Config is an Extended of no sections of its own.
func (c *Config) Root() *Config { return c }

// Load returns the defaults overridden by the YAML file at path (if path is
// not empty) and then by the environment. Unknown YAML keys are errors.
func Load(path string, environ map[string]string) (Config, error) {
	cfg := Default()
	err := LoadInto(path, environ, &cfg)
	return cfg, err
}

// LoadInto is Load into cfg, a pointer set to its defaults by the caller.
// environ nil means the process environment.
func LoadInto(path string, environ map[string]string, cfg Extended) error {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := env.ParseWithOptions(cfg, EnvOptions(environ)); err != nil {
		return namedEnvError(cfg, environ, err)
	}
	c := cfg.Root()
	controllerVersion(environ, &c.Worker.Versioning)
	if f := c.Cassandra.PasswordFile; f != "" {
		if c.Cassandra.Password != "" {
			return errors.New("cassandra: set password or passwordFile, not both")
		}
		secret, err := ReadSecretFile(f)
		if err != nil {
			return fmt.Errorf("cassandra.passwordFile: %w", err)
		}
		c.Cassandra.Password = secret
	}
	return nil
}

// Variables temporal-worker-controller sets in the pods of each version it
// runs: the worker takes its deployment version from them unless the
// ARTIFACTSTATE_WORKER_VERSIONING_* variables name one.
const (
	ControllerDeploymentNameEnv = "TEMPORAL_DEPLOYMENT_NAME"
	ControllerBuildIDEnv        = "TEMPORAL_WORKER_BUILD_ID"
)

func controllerVersion(environ map[string]string, v *Versioning) {
	get := func(name string) string {
		if environ == nil {
			return os.Getenv(name)
		}
		return environ[name]
	}
	if name := get(ControllerDeploymentNameEnv); name != "" && get(EnvPrefix+"WORKER_VERSIONING_DEPLOYMENT_NAME") == "" {
		v.DeploymentName = name
	}
	if id := get(ControllerBuildIDEnv); id != "" && get(EnvPrefix+"WORKER_VERSIONING_BUILD_ID") == "" {
		v.BuildID = id
	}
}

// ReadSecretFile returns a secret kept in a file (a mounted Kubernetes
// Secret), without the trailing newline editors and `echo` add.
func ReadSecretFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimRight(string(raw), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// namedEnvError names the variables that failed to parse into cfg's type:
// the library's error names struct fields, which readers of the
// environment never see.
func namedEnvError(cfg any, environ map[string]string, err error) error {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	names, nameErr := EnvVarsOf(cfg)
	if nameErr != nil {
		return fmt.Errorf("environment: %w", err)
	}
	var bad []string
	for _, name := range names {
		value, ok := environ[name]
		if !ok {
			continue
		}
		probe := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
		if perr := env.ParseWithOptions(probe, EnvOptions(map[string]string{name: value})); perr != nil {
			bad = append(bad, fmt.Sprintf("%s=%q is not valid for its type", name, value))
		}
	}
	if len(bad) == 0 {
		return fmt.Errorf("environment: %w", err)
	}
	return fmt.Errorf("environment: %s", strings.Join(bad, "; "))
}

// EnvOptions are the options the environment is parsed with; environ nil
// means the process environment.
func EnvOptions(environ map[string]string) env.Options {
	return env.Options{Prefix: EnvPrefix, Environment: environ}
}

// EnvVars lists every environment variable the configuration reads.
func EnvVars() ([]string, error) {
	cfg := Default()
	return EnvVarsOf(&cfg)
}

// EnvVarsOf lists every environment variable cfg (a pointer to Config or
// to an Extended struct) reads.
func EnvVarsOf(cfg any) ([]string, error) {
	params, err := env.GetFieldParamsWithOptions(cfg, EnvOptions(map[string]string{}))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(params))
	for _, p := range params {
		names = append(names, p.Key)
	}
	return names, nil
}
