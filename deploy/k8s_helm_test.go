package deploy_test

// The Temporal Helm values (deploy/k8s/dependencies/temporal/values-*.yaml).
// Helm ignores keys a chart does not read and the Temporal server ignores
// unknown configuration keys, so a misplaced key (the 0.x chart's
// server.config.numHistoryShards, say) silently falls back to a default. Every
// key is therefore checked against the chart's values layout at the pinned
// chart version (testdata/temporal-chart-values-layout.yaml), and the
// persistence block, which the chart hands to the server verbatim, is decoded
// strictly into the server's own configuration types at the version go.mod
// pins. Then the values must agree with the app and its dependencies.

import (
	"bytes"
	"fmt"
	"net"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	temporalconfig "go.temporal.io/server/common/config"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
)

// chartVersion is the Temporal Helm chart the values files and the README target.
const chartVersion = "1.6.0"

// chartLayoutFile is the chart's values layout (see its header).
const chartLayoutFile = "deploy/testdata/temporal-chart-values-layout.yaml"

// chartOwnStoreKeys are the keys of a datastore the chart consumes itself and
// strips (or never passes on) before rendering the server configuration:
// credentials from Secrets, whether to create the database and manage its
// schema, and the replication factor of the keyspace its schema job creates.
var chartOwnStoreKeys = []string{"existingSecret", "secretKey", "createDatabase", "manageSchema", "replicationFactor"}

// chartLayout is the chart's values layout as a YAML tree.
func chartLayout(t *testing.T) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(read(t, chartLayoutFile), &doc); err != nil {
		t.Fatalf("%s: %v", chartLayoutFile, err)
	}
	return doc.Content[0]
}

// checkChartKeys reports every key of values (a YAML mapping) that the
// chart's layout does not have, or whose value is of another kind.
func checkChartKeys(where string, layout, values *yaml.Node) []string {
	root := layout
	var problems []string
	var walk func(prefix string, layout, values *yaml.Node)
	walk = func(prefix string, layout, values *yaml.Node) {
		if layout.Kind == yaml.ScalarNode {
			if p := checkKind(layout.Value, values); p != "" {
				problems = append(problems, fmt.Sprintf("%s: %s: %s", where, prefix, p))
			}
			return
		}
		if values.Kind != yaml.MappingNode {
			problems = append(problems, fmt.Sprintf("%s: %s: a block of keys in chart %s, not a %s", where, prefix, chartVersion, kindName(values)))
			return
		}
		for i := 0; i+1 < len(values.Content); i += 2 {
			key, val := values.Content[i].Value, values.Content[i+1]
			p := strings.TrimPrefix(prefix+"."+key, ".")
			sub := mappingValue(layout, key)
			if sub == nil {
				msg := fmt.Sprintf("%s: %s is not a key of chart temporal %s's values: Helm ignores it", where, p, chartVersion)
				if alt := layoutPaths(root, key); len(alt) > 0 {
					msg += fmt.Sprintf(" (the chart has %s)", strings.Join(alt, ", "))
				}
				problems = append(problems, msg)
				continue
			}
			walk(p, sub, val)
		}
	}
	walk("", layout, values)
	return problems
}

// checkKind compares a value with the kind a layout leaf names.
func checkKind(kind string, v *yaml.Node) string {
	if v.Tag == "!!null" {
		return ""
	}
	ok := false
	switch kind {
	case "map":
		ok = v.Kind == yaml.MappingNode
	case "list":
		ok = v.Kind == yaml.SequenceNode
	case "string":
		ok = v.Kind == yaml.ScalarNode
	case "int":
		ok = v.Kind == yaml.ScalarNode && v.Tag == "!!int"
	case "bool":
		ok = v.Kind == yaml.ScalarNode && v.Tag == "!!bool"
	default:
		return fmt.Sprintf("the layout names an unknown kind %q", kind)
	}
	if !ok {
		return fmt.Sprintf("the chart expects a %s, not a %s", kind, kindName(v))
	}
	return ""
}

func kindName(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	return strings.TrimPrefix(v.Tag, "!!") + " " + v.Value
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// layoutPaths lists the dotted paths of the layout that end in key.
func layoutPaths(root *yaml.Node, key string) []string {
	var out []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := strings.TrimPrefix(prefix+"."+n.Content[i].Value, ".")
			if n.Content[i].Value == key {
				out = append(out, p)
			}
			walk(p, n.Content[i+1])
		}
	}
	walk("", root)
	sort.Strings(out)
	return out
}

// chartPathExists reports whether a dotted path (a --set key) is in the
// layout, or below a free-form map of it.
func chartPathExists(layout *yaml.Node, dotted string) bool {
	n := layout
	for _, part := range strings.Split(dotted, ".") {
		if n.Kind == yaml.ScalarNode {
			return n.Value == "map"
		}
		if n = mappingValue(n, part); n == nil {
			return false
		}
	}
	return true
}

// helmValues are the parts of our values files the checks below read.
type helmValues struct {
	Server struct {
		Image         struct{ Tag string }
		DynamicConfig map[string]any `yaml:"dynamicConfig"`
		Config        struct {
			Namespaces struct {
				Create    bool
				Namespace []struct{ Name, Retention string }
			}
			Persistence map[string]any
		}
	}
	Admintools struct{ Image struct{ Tag string } }
	Web        struct{ Image struct{ Tag string } }
	Shims      struct {
		Dockerize         *bool `yaml:"dockerize"`
		ElasticsearchTool *bool `yaml:"elasticsearchTool"`
	}
}

// serverPersistence decodes the persistence block the way the server will
// read it: the chart's own keys removed, then strictly into the server's
// config.Persistence, so a key the server does not know is an error.
func serverPersistence(t *testing.T, where string, p map[string]any) temporalconfig.Persistence {
	t.Helper()
	stores, _ := p["datastores"].(map[string]any)
	clean := map[string]any{}
	for k, v := range p {
		clean[k] = v
	}
	cleanStores := map[string]any{}
	for name, ds := range stores {
		dsMap, ok := ds.(map[string]any)
		if !ok {
			t.Errorf("%s: datastore %s is not a map", where, name)
			continue
		}
		out := map[string]any{}
		for driver, cfg := range dsMap {
			m, ok := cfg.(map[string]any)
			if !ok {
				out[driver] = cfg
				continue
			}
			c := map[string]any{}
			for k, v := range m {
				if !slices.Contains(chartOwnStoreKeys, k) {
					c[k] = v
				}
			}
			out[driver] = c
		}
		cleanStores[name] = out
	}
	clean["datastores"] = cleanStores
	raw, err := yaml.Marshal(clean)
	if err != nil {
		t.Fatal(err)
	}
	var cfg temporalconfig.Persistence
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Errorf("%s: server.config.persistence is not a Temporal server persistence configuration (go.temporal.io/server/common/config, the version go.mod pins): %v", where, err)
	}
	return cfg
}

// storeConfig is one datastore's driver block as written in the values.
func storeConfig(p map[string]any, store string) (driver string, cfg map[string]any) {
	stores, _ := p["datastores"].(map[string]any)
	ds, _ := stores[store].(map[string]any)
	for d, c := range ds {
		m, _ := c.(map[string]any)
		return d, m
	}
	return "", nil
}

// TestHelmValuesFollowTheChart: every key of our values files is a key of
// the chart's values at the pinned version, of the kind the chart expects,
// and the persistence block is one the Temporal server reads in full.
func TestHelmValuesFollowTheChart(t *testing.T) {
	layout := chartLayout(t)
	for _, ov := range overlays {
		t.Run(path.Base(ov.temporal), func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal(read(t, ov.temporal), &doc); err != nil {
				t.Fatalf("%s: %v", ov.temporal, err)
			}
			for _, p := range checkChartKeys(ov.temporal, layout, doc.Content[0]) {
				t.Error(p)
			}
			var v helmValues
			if err := yaml.Unmarshal(read(t, ov.temporal), &v); err != nil {
				t.Fatal(err)
			}
			cfg := serverPersistence(t, ov.temporal, v.Server.Config.Persistence)
			if cfg.NumHistoryShards != ov.historyShards {
				t.Errorf("%s: the server gets %d history shards, want %d (server.config.persistence.numHistoryShards; it cannot change once the cluster has started)",
					ov.temporal, cfg.NumHistoryShards, ov.historyShards)
			}
		})
	}
}

// TestHelmValuesFitTheApp: the Temporal values pair with the app (versions,
// frontend address, namespace) and with the dependencies (stores, users,
// credentials), and carry the same dynamic configuration as compose.
func TestHelmValuesFitTheApp(t *testing.T) {
	known := knownEnv(t)
	server, ui := temporalVersions(t)
	var composeDynamic map[string]any
	if err := yaml.Unmarshal(read(t, "deploy/compose/temporal/dynamicconfig.yaml"), &composeDynamic); err != nil {
		t.Fatal(err)
	}
	for _, ov := range overlays {
		t.Run(path.Base(ov.temporal), func(t *testing.T) {
			app, _ := overlayAPIConfig(t, ov, known)
			depObjs, dc, es := dependencies(t, ov.dependencies)
			var v helmValues
			if err := yaml.Unmarshal(read(t, ov.temporal), &v); err != nil {
				t.Fatal(err)
			}
			if v.Server.Image.Tag != server || v.Admintools.Image.Tag != server || v.Web.Image.Tag != ui {
				t.Errorf("%s: server %s, admin tools %s, UI %s; go.mod builds against server %s and UI %s", ov.temporal,
					v.Server.Image.Tag, v.Admintools.Image.Tag, v.Web.Image.Tag, server, ui)
			}
			// The compatibility shims are for 1.29 images and the chart turns
			// them on by default.
			if v.Shims.Dockerize == nil || *v.Shims.Dockerize || v.Shims.ElasticsearchTool == nil || *v.Shims.ElasticsearchTool {
				t.Errorf("%s: shims.dockerize and shims.elasticsearchTool must be false for Temporal %s (the chart defaults them to true, for 1.29 images)", ov.temporal, server)
			}
			if fmt.Sprint(v.Server.DynamicConfig) != fmt.Sprint(composeDynamic) {
				t.Errorf("%s: server.dynamicConfig %v differs from compose's deploy/compose/temporal/dynamicconfig.yaml %v", ov.temporal, v.Server.DynamicConfig, composeDynamic)
			}

			if host, _, _ := net.SplitHostPort(app.Temporal.Address); host != "temporal-frontend.temporal.svc.cluster.local" {
				t.Errorf("Temporal address %s is not the chart's frontend Service (release temporal, namespace temporal)", app.Temporal.Address)
			}
			if !v.Server.Config.Namespaces.Create || !slices.ContainsFunc(v.Server.Config.Namespaces.Namespace, func(n struct{ Name, Retention string }) bool {
				return n.Name == app.Temporal.Namespace
			}) {
				t.Errorf("%s: the chart does not create the Temporal namespace %q the app uses", ov.temporal, app.Temporal.Namespace)
			}

			p := serverPersistence(t, ov.temporal, v.Server.Config.Persistence)
			def, vis := p.DataStores[p.DefaultStore], p.DataStores[p.VisibilityStore]
			if def.Cassandra == nil || def.Cassandra.Hosts != dc.service() || def.Cassandra.Keyspace == app.Cassandra.Keyspace ||
				def.Cassandra.Datacenter != dc.Metadata.Name {
				t.Errorf("%s: Temporal's default store must be the Cassandra %s (datacenter %s) in its own keyspace: %+v", ov.temporal, dc.service(), dc.Metadata.Name, def.Cassandra)
			}
			if vis.Elasticsearch == nil || vis.Elasticsearch.URL.Host != es.httpService() || vis.Elasticsearch.Version != "v"+strings.Split(es.Spec.Version, ".")[0] {
				t.Errorf("%s: Temporal's visibility store must be the Elasticsearch %s %s: %+v", ov.temporal, es.httpService(), es.Spec.Version, vis.Elasticsearch)
			} else if want := map[bool]string{true: "http", false: "https"}[es.Spec.HTTP.TLS.SelfSignedCertificate.Disabled]; vis.Elasticsearch.URL.Scheme != want {
				t.Errorf("%s: Elasticsearch URL scheme %s, the cluster serves %s", ov.temporal, vis.Elasticsearch.URL.Scheme, want)
			}
			if _, c := storeConfig(v.Server.Config.Persistence, p.DefaultStore); c != nil {
				if rf, _ := c["replicationFactor"].(int); rf < 1 || rf > dc.Spec.Size {
					t.Errorf("%s: Temporal's keyspace replication factor %v on a %d-node datacenter", ov.temporal, c["replicationFactor"], dc.Spec.Size)
				}
			}

			// Credentials: the chart takes a store password from the values
			// or from existingSecret; an empty password still counts as set,
			// and then the schema job and the server cannot log in.
			for _, store := range []string{p.DefaultStore, p.VisibilityStore} {
				driver, c := storeConfig(v.Server.Config.Persistence, store)
				pw, hasPW := c["password"]
				secret, _ := c["existingSecret"].(string)
				switch {
				case hasPW && (pw == nil || pw == ""):
					t.Errorf("%s: datastores.%s.%s.password is empty: the chart treats it as set and the store gets no password", ov.temporal, store, driver)
				case hasPW && secret != "":
					t.Errorf("%s: datastores.%s.%s sets both password and existingSecret", ov.temporal, store, driver)
				case !hasPW && secret == "":
					t.Errorf("%s: datastores.%s.%s has neither a password nor an existingSecret", ov.temporal, store, driver)
				}
				if secret == es.elasticUserSecret() && (c["secretKey"] != "elastic" || driver != "elasticsearch") {
					t.Errorf("%s: ECK keeps the elastic user's password under key \"elastic\" of %s, datastores.%s reads key %v", ov.temporal, secret, store, c["secretKey"])
				}
			}
			// The Cassandra user the values log in with is a role
			// cass-operator creates: in the local dependencies, from the
			// Secret temporal-cassandra they generate.
			if def.Cassandra != nil {
				for _, s := range find[*corev1.Secret](depObjs) {
					if s.Name == "temporal-cassandra" && (s.StringData["username"] != def.Cassandra.User || s.StringData["password"] != def.Cassandra.Password) {
						t.Errorf("%s: Cassandra user %q does not match the role cass-operator creates from %s/%s", ov.temporal, def.Cassandra.User, s.Namespace, s.Name)
					}
				}
			}
		})
	}
}
