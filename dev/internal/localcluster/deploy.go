package localcluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The deployment files the cluster takes its Temporal configuration from,
// relative to the repository root: what docker-compose.yml runs is what the
// cluster runs, natively.
const (
	composeFile        = "docker-compose.yml"
	setupSchemaScript  = "deploy/compose/temporal/setup-schema.sh"
	createNamespaceSh  = "deploy/compose/temporal/create-namespace.sh"
	productionValues   = "deploy/k8s/dependencies/temporal/values-production.yaml"
	localValues        = "deploy/k8s/dependencies/temporal/values-local.yaml"
	dynamicConfigInCtr = "DYNAMIC_CONFIG_FILE_PATH" // env var naming the file inside the container
)

// Deployment is the Temporal and application configuration the cluster
// shares with docker-compose.yml and the Kubernetes Helm values, read from
// those files at every start (so the cluster cannot drift from them).
type Deployment struct {
	// TemporalVersion is the temporalio/server image tag of compose; the
	// server binary built from go.mod must report the same version.
	TemporalVersion string
	// CassandraVersion is the cassandra image tag of compose.
	CassandraVersion string
	// UIVersion is the temporalio/ui image tag of compose.
	UIVersion string
	// NumHistoryShards and Keyspace: the temporal service's environment.
	NumHistoryShards int
	Keyspace         string
	// DynamicConfigFile is the absolute path of the host file compose
	// mounts as the server's dynamic config.
	DynamicConfigFile string
	// Namespace and Retention: the temporal-namespace service's environment.
	Namespace string
	Retention time.Duration
	// SchemaSteps are the temporal-cassandra-tool commands of
	// setup-schema.sh, each the tool's arguments with the script's
	// variables left in (see schemaArgs).
	SchemaSteps [][]string
	// WorkerEnv and APIEnv are the ARTIFACTSTATE_* environment compose
	// gives its worker and api services (the cluster's command-line flags
	// replace the addresses in them).
	WorkerEnv, APIEnv map[string]string
	// Consistency and SerialConsistency of Temporal's Cassandra store, and
	// its ReplicationFactor: the production Helm values.
	Consistency       string
	SerialConsistency string
	ReplicationFactor int
}

// LoadDeployment reads the deployment files under repoRoot.
func LoadDeployment(repoRoot string) (*Deployment, error) {
	d := &Deployment{}
	if err := d.readCompose(repoRoot); err != nil {
		return nil, err
	}
	steps, err := readSchemaSteps(filepath.Join(repoRoot, setupSchemaScript))
	if err != nil {
		return nil, err
	}
	d.SchemaSteps = steps
	if err := d.readProductionValues(filepath.Join(repoRoot, productionValues)); err != nil {
		return nil, err
	}
	return d, nil
}

// composeDoc is the part of docker-compose.yml the cluster reads.
type composeDoc struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

func (d *Deployment) readCompose(repoRoot string) error {
	path := filepath.Join(repoRoot, composeFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("localcluster: %w", err)
	}
	var doc composeDoc
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("localcluster: parse %s: %w", path, err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	service := func(name string) (img string, env map[string]string, vols []string) {
		s, ok := doc.Services[name]
		if !ok {
			bad("no service %q", name)
		}
		return s.Image, s.Environment, s.Volumes
	}
	tag := func(image string) string {
		_, t, ok := strings.Cut(image, ":")
		if !ok {
			bad("image %q has no tag", image)
		}
		return t
	}
	need := func(env map[string]string, service, key string) string {
		v := env[key]
		if v == "" {
			bad("service %s sets no %s", service, key)
		}
		return v
	}

	img, env, vols := service("temporal")
	d.TemporalVersion = tag(img)
	if n, err := strconv.Atoi(need(env, "temporal", "NUM_HISTORY_SHARDS")); err != nil || n < 1 {
		bad("temporal: NUM_HISTORY_SHARDS %q is not a positive number", env["NUM_HISTORY_SHARDS"])
	} else {
		d.NumHistoryShards = n
	}
	d.Keyspace = need(env, "temporal", "KEYSPACE")
	inContainer := need(env, "temporal", dynamicConfigInCtr)
	for _, v := range vols { // ./host/path:/container/path[:ro]
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == inContainer {
			d.DynamicConfigFile = filepath.Join(repoRoot, parts[0])
		}
	}
	if d.DynamicConfigFile == "" {
		bad("temporal: no volume mounts %s=%s", dynamicConfigInCtr, inContainer)
	}

	img, _, _ = service("cassandra")
	d.CassandraVersion = tag(img)
	img, _, _ = service("temporal-ui")
	d.UIVersion = tag(img)

	_, env, _ = service("temporal-namespace")
	d.Namespace = need(env, "temporal-namespace", "NAMESPACE")
	if r, err := time.ParseDuration(need(env, "temporal-namespace", "RETENTION")); err != nil || r <= 0 {
		bad("temporal-namespace: RETENTION %q is not a duration", env["RETENTION"])
	} else {
		d.Retention = r
	}

	appEnv := func(name string) map[string]string {
		_, env, _ := service(name)
		out := map[string]string{}
		for k, v := range env {
			if strings.HasPrefix(k, "ARTIFACTSTATE_") {
				out[k] = v
			}
		}
		if len(out) == 0 {
			bad("%s: no ARTIFACTSTATE_* environment", name)
		}
		return out
	}
	d.WorkerEnv, d.APIEnv = appEnv("worker"), appEnv("api")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localcluster: %s: %w", path, err)
	}
	return nil
}

// readSchemaSteps returns the arguments of every temporal-cassandra-tool
// command of the script run once per line (not the validate-health probe of
// its wait loop).
func readSchemaSteps(path string) ([][]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	var steps [][]string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "temporal-cassandra-tool ")
		if !ok {
			continue
		}
		args, err := splitShellWords(rest)
		if err != nil {
			return nil, fmt.Errorf("localcluster: %s: %q: %w", path, line, err)
		}
		steps = append(steps, args)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("localcluster: %s has no temporal-cassandra-tool step", path)
	}
	return steps, nil
}

// splitShellWords splits the simple shell words of the schema script:
// plain words and double-quoted strings, nothing else (a quote left open,
// or any other shell syntax, is an error so a change to the script fails
// loudly instead of running something else).
func splitShellWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !quoted && strings.ContainsRune(`'\;|&<>()`+"`", r):
			return nil, fmt.Errorf("shell syntax %q is not supported", r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandVars replaces ${NAME} and ${NAME:-default} in s from vars; a
// variable not in vars and without default is an error.
func expandVars(s string, vars map[string]string) (string, error) {
	var out strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			out.WriteString(s)
			return out.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+j]
		name, def, hasDef := strings.Cut(expr, ":-")
		v, ok := vars[name]
		switch {
		case hasDef && v == "": // like the shell: unset or empty
			v = def
		case ok:
		default:
			return "", fmt.Errorf("variable %s is not known", name)
		}
		out.WriteString(s[:i])
		out.WriteString(v)
		s = s[i+j+1:]
	}
}

// schemaArgs turns the script's steps into temporal-cassandra-tool command
// lines for this cluster: the script's variables get the cluster's values,
// and the CQL port (the script relies on 9042) is added.
func (d *Deployment) schemaArgs(seeds string, port int, schemaDir string) ([][]string, error) {
	vars := map[string]string{
		"CASSANDRA_SEEDS":             seeds,
		"TEMPORAL_KEYSPACE":           d.Keyspace,
		"TEMPORAL_REPLICATION_FACTOR": strconv.Itoa(d.ReplicationFactor),
		"schema":                      schemaDir,
	}
	out := make([][]string, 0, len(d.SchemaSteps))
	for _, step := range d.SchemaSteps {
		args := []string{"--port", strconv.Itoa(port)}
		for _, w := range step {
			e, err := expandVars(w, vars)
			if err != nil {
				return nil, fmt.Errorf("localcluster: %s: %w", setupSchemaScript, err)
			}
			args = append(args, e)
		}
		out = append(out, args)
	}
	return out, nil
}

// valuesDoc is the part of the Helm values the cluster reads.
type valuesDoc struct {
	Server struct {
		Config struct {
			Namespaces struct {
				Namespace []struct {
					Name      string `yaml:"name"`
					Retention string `yaml:"retention"`
				} `yaml:"namespace"`
			} `yaml:"namespaces"`
			Persistence struct {
				Datastores struct {
					Default struct {
						Cassandra struct {
							Keyspace          string `yaml:"keyspace"`
							ReplicationFactor int    `yaml:"replicationFactor"`
							Consistency       struct {
								Default struct {
									Consistency       string `yaml:"consistency"`
									SerialConsistency string `yaml:"serialConsistency"`
								} `yaml:"default"`
							} `yaml:"consistency"`
						} `yaml:"cassandra"`
					} `yaml:"default"`
				} `yaml:"datastores"`
			} `yaml:"persistence"`
		} `yaml:"config"`
	} `yaml:"server"`
}

func readValues(path string) (*valuesDoc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	var v valuesDoc
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("localcluster: parse %s: %w", path, err)
	}
	return &v, nil
}

func (d *Deployment) readProductionValues(path string) error {
	v, err := readValues(path)
	if err != nil {
		return err
	}
	c := v.Server.Config.Persistence.Datastores.Default.Cassandra
	d.Consistency = c.Consistency.Default.Consistency
	d.SerialConsistency = c.Consistency.Default.SerialConsistency
	d.ReplicationFactor = c.ReplicationFactor
	if d.Consistency == "" || d.SerialConsistency == "" || d.ReplicationFactor < 1 {
		return fmt.Errorf("localcluster: %s: server.config.persistence.datastores.default.cassandra "+
			"sets no consistency.default.consistency, serialConsistency or replicationFactor", path)
	}
	return nil
}
