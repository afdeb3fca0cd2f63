package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/caarlos0/env/v11"
	"gopkg.in/yaml.v3"
)

// Load returns the defaults overridden by the YAML file at path (if path is
// not empty) and then by the environment. Unknown YAML keys are errors.
func Load(path string, environ map[string]string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := env.ParseWithOptions(&cfg, EnvOptions(environ)); err != nil {
		return cfg, namedEnvError(environ, err)
	}
	if f := cfg.Cassandra.PasswordFile; f != "" {
		if cfg.Cassandra.Password != "" {
			return cfg, errors.New("cassandra: set password or passwordFile, not both")
		}
		secret, err := ReadSecretFile(f)
		if err != nil {
			return cfg, fmt.Errorf("cassandra.passwordFile: %w", err)
		}
		cfg.Cassandra.Password = secret
	}
	return cfg, nil
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

// namedEnvError names the variables that failed to parse: the library's
// error names struct fields, which readers of the environment never see.
func namedEnvError(environ map[string]string, err error) error {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	names, nameErr := EnvVars()
	if nameErr != nil {
		return fmt.Errorf("environment: %w", err)
	}
	var bad []string
	for _, name := range names {
		value, ok := environ[name]
		if !ok {
			continue
		}
		probe := Default()
		if perr := env.ParseWithOptions(&probe, EnvOptions(map[string]string{name: value})); perr != nil {
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
	params, err := env.GetFieldParamsWithOptions(&cfg, EnvOptions(map[string]string{}))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(params))
	for _, p := range params {
		names = append(names, p.Key)
	}
	return names, nil
}
