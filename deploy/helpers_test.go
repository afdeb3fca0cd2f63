// Package deploy_test validates the deployment files without Docker or a
// cluster, one file per subject:
//
//	compose_test.go          docker-compose.yml, loaded with compose-go (the loader of `docker compose`)
//	observability_test.go    Prometheus scrape config and alert rules, Grafana provisioning and dashboards
//	dockerfile_test.go       the Dockerfile and .dockerignore (the image build is the Makefile's build)
//	k8s_overlays_test.go     the kustomize base and overlays, built in-process, decoded into the API types
//	k8s_controller_test.go   temporal-worker-controller: its custom resources against its own CRDs, the
//	                         workers' rollout, the draining CronJob, the controller's Helm values
//	k8s_dependencies_test.go Cassandra and Elasticsearch custom resources, and how the app reaches them
//	k8s_helm_test.go         the Temporal Helm values against the chart's values layout and the server's config
//	readme_test.go           the README's deployment commands: versions, order, variables, waits
//
// The environment every artifactstate container gets is loaded and validated
// with the typed config, and each ARTIFACTSTATE_* name is checked against
// config.EnvVars(): the binary ignores unknown names, so a typo would
// otherwise go unnoticed. The helpers shared by several files are here.
package deploy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/cli"
	"github.com/artifactstate/artifactstate/internal/config"
)

// ---------------------------------------------------------------- files

// repoRoot is the repository root; `go test` runs in deploy/.
const repoRoot = ".."

// read returns a file of the repository (a path relative to its root) and
// fails the test when it is missing.
func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(rel string) bool {
	_, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(rel)))
	return err == nil
}

// goModVersions are the go directive and the versions the repository's Go
// modules require, by module path: the product's go.mod, and dev/go.mod for
// what only the development module requires (the Temporal server and its
// Web UI, which the dev role embeds and the local cluster runs). Both
// modules must name the same go directive.
func goModVersions(t *testing.T) (goVersion string, mods map[string]string) {
	t.Helper()
	mods = map[string]string{}
	for _, file := range []string{"go.mod", "dev/go.mod"} {
		fileGo := ""
		inBlock := false
		for _, line := range strings.Split(string(read(t, file)), "\n") {
			line, _, _ = strings.Cut(line, "//")
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "go":
				fileGo = f[1]
			case len(f) >= 2 && f[0] == "require" && f[1] == "(":
				inBlock = true
			case len(f) == 1 && f[0] == ")":
				inBlock = false
			case len(f) == 3 && f[0] == "require":
				if _, ok := mods[f[1]]; !ok {
					mods[f[1]] = f[2]
				}
			case inBlock && len(f) == 2:
				if _, ok := mods[f[0]]; !ok {
					mods[f[0]] = f[1]
				}
			}
		}
		if goVersion == "" {
			goVersion = fileGo
		} else if fileGo != goVersion {
			t.Fatalf("%s says go %s, go.mod says go %s: keep them equal", file, fileGo, goVersion)
		}
	}
	if goVersion == "" || mods["go.temporal.io/server"] == "" {
		t.Fatalf("go.mod, dev/go.mod: no go directive or no go.temporal.io/server requirement")
	}
	return goVersion, mods
}

// temporalVersions are the Temporal server and Web UI versions the binary is
// built and tested against (go.mod), without the leading v.
func temporalVersions(t *testing.T) (server, ui string) {
	t.Helper()
	_, mods := goModVersions(t)
	return strings.TrimPrefix(mods["go.temporal.io/server"], "v"), strings.TrimPrefix(mods["github.com/temporalio/ui-server/v2"], "v")
}

// ---------------------------------------------------------------- the app's configuration

// roles are the subcommands of the production binary the image ships
// (cmd/artifactstate: internal/cli's root command), read from the command
// itself: no dev, which only the development binary adds.
var roles = func() []string {
	var names []string
	for _, c := range cli.NewRoot().Commands() {
		names = append(names, c.Name())
	}
	return names
}()

// parseCommand parses a command line of the production binary (its
// arguments, without the binary) the way the binary does, without running
// it: the subcommand must exist, and its flags and arguments must parse.
func parseCommand(args []string) (*cobra.Command, error) {
	cmd, rest, err := cli.NewRoot().Find(args)
	if err != nil {
		return nil, err
	}
	if !cmd.Runnable() {
		return nil, fmt.Errorf("%q is not a command of the binary, only a group of commands", strings.Join(args, " "))
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	return cmd, nil
}

// knownEnv is config.EnvVars() as a set.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	names, err := config.EnvVars()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("config.EnvVars() lists only %d names: %v", len(names), names)
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}

// checkEnv reports ARTIFACTSTATE_* names the config does not read, then loads
// and validates the configuration the environment gives.
func checkEnv(t *testing.T, where string, env map[string]string, known map[string]bool) config.Config {
	t.Helper()
	for name := range env {
		if strings.HasPrefix(name, config.EnvPrefix) && !known[name] {
			t.Errorf("%s: %s is not read by the typed config (internal/config): a typo or a removed setting", where, name)
		}
	}
	cfg, err := config.Load("", env)
	if err != nil {
		t.Fatalf("%s: config.Load: %v", where, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: the configuration this environment gives is rejected at start-up:\n%v", where, err)
	}
	return cfg
}

// listenPort is the port of a host:port address.
func listenPort(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, addr, err)
	}
	return n
}

// ---------------------------------------------------------------- Kubernetes objects

// overlay describes what each kustomize overlay must satisfy and the
// dependencies it pairs with.
type overlay struct {
	dir           string
	dependencies  string   // the matching deploy/k8s/dependencies directory
	temporal      string   // the Temporal Helm values it pairs with
	outOfBand     []string // Secrets the overlay expects to exist in the cluster
	minReplicas   int32
	historyShards int32 // server.config.persistence.numHistoryShards the Temporal values must set
}

var overlays = []overlay{
	{dir: "deploy/k8s/overlays/local", dependencies: "deploy/k8s/dependencies/local",
		temporal: "deploy/k8s/dependencies/temporal/values-local.yaml", minReplicas: 1, historyShards: 64},
	{dir: "deploy/k8s/overlays/production", dependencies: "deploy/k8s/dependencies/production",
		temporal:  "deploy/k8s/dependencies/temporal/values-production.yaml",
		outOfBand: []string{"artifactstate-cassandra"}, minReplicas: 3, historyShards: 1024},
}

// appNamespace is the Kubernetes namespace of the app's objects.
const appNamespace = "artifactstate"

type k8sObject struct {
	apiVersion, kind, name, namespace string
	raw                               []byte
	obj                               any
}

// newTyped returns the Go type an object must decode into.
func newTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	case "monitoring.coreos.com/v1/PodMonitor":
		return &monitoringv1.PodMonitor{}, true
	}
	return nil, false
}

// appForeign are the kinds of the app's overlays without a Go API type
// here: cert-manager's Certificate and temporal-worker-controller's
// resources (k8s_controller_test.go validates those against its CRDs).
var appForeign = append([]string{"Certificate"}, controllerKinds...)

// kustomizeBuild builds a kustomization in-process and decodes every object
// strictly (unknown, duplicate or mis-cased fields are errors). Objects of
// kinds in `foreign` (custom resources of the operators we depend on) are
// kept undecoded.
func kustomizeBuild(t *testing.T, dir string, foreign ...string) []k8sObject {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, filepath.FromSlash(dir)))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []k8sObject
	for _, r := range m.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		o := k8sObject{apiVersion: r.GetApiVersion(), kind: r.GetKind(), name: r.GetName(), namespace: r.GetNamespace(), raw: raw}
		typed, ok := newTyped(o.apiVersion, o.kind)
		if !ok {
			if !slices.Contains(foreign, o.kind) {
				t.Errorf("%s: %s %s/%s has no API type to validate against", dir, o.apiVersion, o.kind, o.name)
			}
			out = append(out, o)
			continue
		}
		strict, err := kjson.UnmarshalStrict(raw, typed, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			t.Errorf("%s: %s %s: %v", dir, o.kind, o.name, err)
		}
		for _, e := range strict {
			t.Errorf("%s: %s %s: %v", dir, o.kind, o.name, e)
		}
		o.obj = typed
		out = append(out, o)
	}
	return out
}

// find returns the decoded objects of one Go type.
func find[T any](objs []k8sObject) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func byName[T interface{ GetName() string }](t *testing.T, objs []k8sObject, name string) T {
	t.Helper()
	for _, v := range find[T](objs) {
		if v.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

// selects reports whether a non-empty label selector matches the labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resolvePort is the container port a number or a port name refers to.
func resolvePort(t *testing.T, c corev1.Container, p intstr.IntOrString) int {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	t.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return -1
}

// containerAppEnv is the ARTIFACTSTATE_* environment a container of the
// overlay really gets: its ConfigMap (envFrom) and env entries, each Secret
// reference checked against the overlay's Secrets (or the ones expected to
// exist out of band) and replaced by a placeholder.
func containerAppEnv(t *testing.T, where string, c corev1.Container, objs []k8sObject, ov overlay, known map[string]bool) map[string]string {
	t.Helper()
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range find[*corev1.ConfigMap](objs) {
		configMaps[cm.Name] = cm
	}
	secrets := map[string]*corev1.Secret{}
	for _, s := range find[*corev1.Secret](objs) {
		secrets[s.Name] = s
	}
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %s does not exist", where, ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		default:
			t.Errorf("%s: envFrom %+v: only the ConfigMap is expected", where, ef)
		}
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, config.EnvPrefix) && !known[e.Name] {
			t.Errorf("%s: env %s is not read by the typed config", where, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, ok := secrets[ref.Name]; ok {
				if _, ok := s.Data[ref.Key]; !ok {
					if _, ok := s.StringData[ref.Key]; !ok {
						t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, ref.Name, ref.Key)
					}
				}
			} else if !slices.Contains(ov.outOfBand, ref.Name) {
				t.Errorf("%s: env %s refers to Secret %s, which the overlay does not create", where, e.Name, ref.Name)
			}
			env[e.Name] = "secret-" + ref.Key
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "pod-name"
		case e.ValueFrom.ResourceFieldRef != nil:
			if strings.HasPrefix(e.Name, config.EnvPrefix) {
				t.Errorf("%s: %s from a resource field", where, e.Name)
			}
		default:
			t.Errorf("%s: env %s: unexpected source", where, e.Name)
		}
	}
	appEnv := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, config.EnvPrefix) {
			appEnv[k] = v
		}
	}
	return appEnv
}

// overlayAPIConfig builds an overlay and returns it with the configuration
// its api Deployment runs with.
func overlayAPIConfig(t *testing.T, ov overlay, known map[string]bool) (config.Config, []k8sObject) {
	t.Helper()
	objs := kustomizeBuild(t, ov.dir, appForeign...)
	api := byName[*appsv1.Deployment](t, objs, "artifactstate-api")
	if len(api.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: Deployment artifactstate-api has %d containers", ov.dir, len(api.Spec.Template.Spec.Containers))
	}
	where := ov.dir + " Deployment artifactstate-api"
	env := containerAppEnv(t, where, api.Spec.Template.Spec.Containers[0], objs, ov, known)
	checkSecretFiles(t, where, api.Spec.Template.Spec, env)
	return checkEnv(t, where, env, known), objs
}

// cassandraDatacenter is the part of cass-operator's CassandraDatacenter
// (cassandra.datastax.com/v1beta1) these tests read.
type cassandraDatacenter struct {
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		ClusterName   string `json:"clusterName"`
		ServerVersion string `json:"serverVersion"`
		Size          int    `json:"size"`
		Users         []struct {
			SecretName string `json:"secretName"`
			Superuser  bool   `json:"superuser"`
		} `json:"users"`
	}
}

// service is the CQL Service cass-operator creates for the datacenter.
func (dc cassandraDatacenter) service() string {
	return fmt.Sprintf("%s-%s-service.%s.svc.cluster.local", dc.Spec.ClusterName, dc.Metadata.Name, dc.Metadata.Namespace)
}

// elasticsearchCluster is the part of ECK's Elasticsearch
// (elasticsearch.k8s.elastic.co/v1) these tests read.
type elasticsearchCluster struct {
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		Version string `json:"version"`
		HTTP    struct {
			TLS struct {
				SelfSignedCertificate struct {
					Disabled bool `json:"disabled"`
				} `json:"selfSignedCertificate"`
			} `json:"tls"`
		} `json:"http"`
		NodeSets []struct {
			Name        string         `json:"name"`
			Count       int            `json:"count"`
			Config      map[string]any `json:"config"`
			PodTemplate struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"podTemplate"`
		} `json:"nodeSets"`
	}
}

// httpService is the HTTP Service ECK creates for the cluster, with its port.
func (es elasticsearchCluster) httpService() string {
	return fmt.Sprintf("%s-es-http.%s.svc.cluster.local:9200", es.Metadata.Name, es.Metadata.Namespace)
}

// elasticUserSecret is the Secret in which ECK keeps the password of the
// built-in elastic user (key "elastic").
func (es elasticsearchCluster) elasticUserSecret() string {
	return es.Metadata.Name + "-es-elastic-user"
}

// dependencies builds a deploy/k8s/dependencies kustomization and returns
// its objects with its one CassandraDatacenter and one Elasticsearch.
func dependencies(t *testing.T, dir string) ([]k8sObject, cassandraDatacenter, elasticsearchCluster) {
	t.Helper()
	objs := kustomizeBuild(t, dir, "CassandraDatacenter", "Elasticsearch")
	var dc cassandraDatacenter
	var es elasticsearchCluster
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
		switch o.kind {
		case "CassandraDatacenter":
			if o.apiVersion != "cassandra.datastax.com/v1beta1" {
				t.Errorf("%s: CassandraDatacenter apiVersion %s", dir, o.apiVersion)
			}
			if err := json.Unmarshal(o.raw, &dc); err != nil {
				t.Fatal(err)
			}
		case "Elasticsearch":
			if o.apiVersion != "elasticsearch.k8s.elastic.co/v1" {
				t.Errorf("%s: Elasticsearch apiVersion %s", dir, o.apiVersion)
			}
			if err := json.Unmarshal(o.raw, &es); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kinds["CassandraDatacenter"] != 1 || kinds["Elasticsearch"] != 1 {
		t.Fatalf("%s: %d CassandraDatacenters and %d Elasticsearch clusters, want one of each", dir, kinds["CassandraDatacenter"], kinds["Elasticsearch"])
	}
	return objs, dc, es
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
