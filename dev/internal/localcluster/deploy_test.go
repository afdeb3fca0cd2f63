package localcluster

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/artifactstate/artifactstate/dev/internal/localcassandra"
)

const repoRoot = "../../.."

// goModVersion returns the version go.mod requires of module, without "v".
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "dev", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return strings.TrimPrefix(fields[1], "v")
		}
	}
	t.Fatalf("go.mod does not require %s", module)
	return ""
}

// TestDeploymentMatchesRepository reads the real deployment files and
// checks that what the cluster takes from them agrees with the rest of the
// repository: the versions go.mod pins, the namespace the app uses, the
// Helm values.
func TestDeploymentMatchesRepository(t *testing.T) {
	d, err := LoadDeployment(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if want := goModVersion(t, "go.temporal.io/server"); d.TemporalVersion != want {
		t.Errorf("compose runs temporalio/server:%s, go.mod pins the server at %s", d.TemporalVersion, want)
	}
	if want := goModVersion(t, "github.com/temporalio/ui-server/v2"); d.UIVersion != want {
		t.Errorf("compose runs temporalio/ui:%s, go.mod pins ui-server at %s", d.UIVersion, want)
	}
	if d.CassandraVersion != localcassandra.DefaultVersion {
		t.Errorf("compose runs cassandra:%s, localcassandra defaults to %s", d.CassandraVersion, localcassandra.DefaultVersion)
	}
	if d.NumHistoryShards < 1 || d.Keyspace == "" {
		t.Errorf("shards %d keyspace %q", d.NumHistoryShards, d.Keyspace)
	}
	if _, err := os.Stat(d.DynamicConfigFile); err != nil {
		t.Errorf("dynamic config: %v", err)
	}
	for role, env := range map[string]map[string]string{"worker": d.WorkerEnv, "api": d.APIEnv} {
		if got := env["ARTIFACTSTATE_TEMPORAL_NAMESPACE"]; got != d.Namespace {
			t.Errorf("compose's %s uses namespace %q, temporal-namespace creates %q", role, got, d.Namespace)
		}
	}
	// The production values' store settings the cluster runs with.
	if d.Consistency != "local_quorum" || d.SerialConsistency != "local_serial" || d.ReplicationFactor != cassandraNodes {
		t.Errorf("production store: consistency %q/%q, replication factor %d; the cluster expects local_quorum/local_serial on %d nodes",
			d.Consistency, d.SerialConsistency, d.ReplicationFactor, cassandraNodes)
	}
	// Both Helm installs create the same namespace; the local one keeps it
	// as long as compose does.
	for _, f := range []string{localValues, productionValues} {
		v, err := readValues(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		ns := v.Server.Config.Namespaces.Namespace
		if len(ns) != 1 || ns[0].Name != d.Namespace {
			t.Errorf("%s creates namespaces %+v, compose creates %q", f, ns, d.Namespace)
			continue
		}
		if ks := v.Server.Config.Persistence.Datastores.Default.Cassandra.Keyspace; ks != d.Keyspace {
			t.Errorf("%s keeps Temporal in keyspace %q, compose in %q", f, ks, d.Keyspace)
		}
		if f == localValues {
			if r, err := helmDuration(ns[0].Retention); err != nil || r != d.Retention {
				t.Errorf("%s retention %q (%v), compose's %v", f, ns[0].Retention, err, d.Retention)
			}
		}
	}
}

// helmDuration parses a Helm chart retention: Go durations, or days ("3d").
func helmDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// TestSchemaStepsOfScript: the cluster runs exactly the Cassandra steps of
// compose's setup-schema.sh, with its own hosts, port, replication factor
// and the pinned module's schema directory.
func TestSchemaStepsOfScript(t *testing.T) {
	d, err := LoadDeployment(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.schemaArgs("127.0.0.1,127.0.0.2,127.0.0.3", 19042, "/mod/schema")
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--port", "19042", "--ep", "127.0.0.1,127.0.0.2,127.0.0.3"}
	want := [][]string{
		append(slices.Clone(common), "create-keyspace", "-k", d.Keyspace, "--rf", "3"),
		append(slices.Clone(common), "-k", d.Keyspace, "setup-schema", "-v", "0.0"),
		append(slices.Clone(common), "-k", d.Keyspace, "update-schema", "-d", "/mod/schema/cassandra/temporal/versioned"),
	}
	if len(got) != len(want) {
		t.Fatalf("steps:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("step %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestSplitShellWords(t *testing.T) {
	got, err := splitShellWords(`--ep "${CASSANDRA_SEEDS}" -k "${K}" update-schema -d "${schema}/a b"`)
	want := []string{"--ep", "${CASSANDRA_SEEDS}", "-k", "${K}", "update-schema", "-d", "${schema}/a b"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{`a "b`, `a; rm -rf /`, `a | b`, "a `b`", `a $(b)`, `a 'b'`, `a && b`} {
		if _, err := splitShellWords(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "x", "B": ""}
	for in, want := range map[string]string{
		"${A}":        "x",
		"p${A}q${A}r": "pxqxr",
		"${C:-1}":     "1",
		"${A:-1}":     "x",
		"${B:-1}":     "1", // empty counts as unset, as in the shell
		"plain":       "plain",
	} {
		if got, err := expandVars(in, vars); err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${C}", "${A"} {
		if _, err := expandVars(bad, vars); err == nil {
			t.Errorf("expandVars(%q) accepted", bad)
		}
	}
}

// TestTemporalConfig renders a history host's configuration and reads it
// back as YAML: the keys the server reads carry the cluster's values.
func TestTemporalConfig(t *testing.T) {
	y, err := renderTemporalConfig(temporalConfigParams{
		Role: roleHistory, Ports: temporalPorts{GRPC: 1001, Membership: 1002, Metrics: 1003},
		Services: map[string]temporalPorts{
			roleFrontend: {GRPC: 2001, Membership: 2002, HTTP: 2004}, roleHistory: {GRPC: 1001, Membership: 1002},
			roleMatching: {GRPC: 3001, Membership: 3002}, roleWorker: {GRPC: 4001, Membership: 4002},
		},
		Frontend:         temporalPorts{GRPC: 2001, Membership: 2002, HTTP: 2004, Metrics: 2003},
		NumHistoryShards: 16, CassandraHosts: "127.0.0.1,127.0.0.2,127.0.0.3", CassandraPort: 19042,
		Keyspace: "temporal", Consistency: "local_quorum", SerialConsistency: "local_serial",
		PostgresPort: 15432, DynamicConfigFile: "/repo/dc.yaml", ArchivalDir: "/c/archival",
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Persistence struct {
			NumHistoryShards int    `yaml:"numHistoryShards"`
			DefaultStore     string `yaml:"defaultStore"`
			VisibilityStore  string `yaml:"visibilityStore"`
			Datastores       map[string]struct {
				Cassandra *struct {
					Hosts       string `yaml:"hosts"`
					Port        int    `yaml:"port"`
					Keyspace    string `yaml:"keyspace"`
					Consistency struct {
						Default struct {
							Consistency       string `yaml:"consistency"`
							SerialConsistency string `yaml:"serialConsistency"`
						} `yaml:"default"`
					} `yaml:"consistency"`
				} `yaml:"cassandra"`
				SQL *struct {
					PluginName  string `yaml:"pluginName"`
					ConnectAddr string `yaml:"connectAddr"`
				} `yaml:"sql"`
			} `yaml:"datastores"`
		} `yaml:"persistence"`
		Services map[string]struct {
			RPC struct {
				GRPCPort       int    `yaml:"grpcPort"`
				MembershipPort int    `yaml:"membershipPort"`
				BindOnIP       string `yaml:"bindOnIP"`
			} `yaml:"rpc"`
		} `yaml:"services"`
		ClusterMetadata struct {
			ClusterInformation map[string]struct {
				RPCAddress string `yaml:"rpcAddress"`
			} `yaml:"clusterInformation"`
		} `yaml:"clusterMetadata"`
		DynamicConfigClient struct {
			Filepath string `yaml:"filepath"`
		} `yaml:"dynamicConfigClient"`
	}
	if err := yaml.Unmarshal([]byte(y), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	p := cfg.Persistence
	def, vis := p.Datastores[p.DefaultStore], p.Datastores[p.VisibilityStore]
	switch {
	case p.NumHistoryShards != 16:
		t.Errorf("numHistoryShards %d", p.NumHistoryShards)
	case def.Cassandra == nil || def.Cassandra.Hosts != "127.0.0.1,127.0.0.2,127.0.0.3" || def.Cassandra.Port != 19042 ||
		def.Cassandra.Keyspace != "temporal" || def.Cassandra.Consistency.Default.Consistency != "local_quorum" ||
		def.Cassandra.Consistency.Default.SerialConsistency != "local_serial":
		t.Errorf("default store: %+v", def.Cassandra)
	case vis.SQL == nil || vis.SQL.PluginName != "postgres12" || vis.SQL.ConnectAddr != "127.0.0.1:15432":
		t.Errorf("visibility store: %+v", vis.SQL)
	case len(cfg.Services) != 4 || cfg.Services["matching"].RPC.GRPCPort != 3001 || cfg.Services["history"].RPC.GRPCPort != 1001 ||
		cfg.Services["history"].RPC.MembershipPort != 1002 || cfg.Services["history"].RPC.BindOnIP != "127.0.0.1":
		t.Errorf("services: %+v", cfg.Services)
	case cfg.ClusterMetadata.ClusterInformation["active"].RPCAddress != "127.0.0.1:2001":
		t.Errorf("cluster metadata: %+v", cfg.ClusterMetadata)
	case cfg.DynamicConfigClient.Filepath != "/repo/dc.yaml":
		t.Errorf("dynamic config: %+v", cfg.DynamicConfigClient)
	}
}

func TestFreePortAvoidsAllocated(t *testing.T) {
	st, err := readState(filepath.Join(t.TempDir(), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := range 20 {
		p, err := st.freePort("127.0.0.1", "127.0.0.2", "127.0.0.3")
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		st.Ports.App["x"+strconv.Itoa(i)] = p
	}
}
