// Package deploy_test validates the deployment files without Docker or a
// cluster: docker-compose.yml (loaded with compose-go, the loader of
// `docker compose`), the Dockerfile (its build is the Makefile's build), and
// the Kubernetes manifests (both kustomize overlays built in-process and every
// object decoded strictly into the real API types). The environment every
// artifactstate container gets is loaded and validated with the typed config,
// and each ARTIFACTSTATE_* name is checked against config.EnvVars(): the
// binary ignores unknown names, so a typo would otherwise go unnoticed.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
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

	"github.com/artifactstate/artifactstate/internal/config"
)

// repoRoot is the repository root; `go test` runs in deploy/.
const repoRoot = ".."

// roles are the subcommands of the binary (cmd/artifactstate).
var roles = []string{"api", "worker", "dev", "migrate", "version"}

// leadOwned are files other changes add (alert rules, the local scrape
// config, dashboards): docker-compose.yml mounts them, and their absence is
// tolerated here until they land.
var leadOwned = []string{
	"deploy/prometheus/alerts.yml",
	"deploy/prometheus/prometheus.yml",
	"deploy/grafana/dashboards",
}

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

// goModVersions are the go directive and the versions go.mod requires, by
// module path.
func goModVersions(t *testing.T) (goVersion string, mods map[string]string) {
	t.Helper()
	mods = map[string]string{}
	inBlock := false
	for _, line := range strings.Split(string(read(t, "go.mod")), "\n") {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "go":
			goVersion = f[1]
		case len(f) >= 2 && f[0] == "require" && f[1] == "(":
			inBlock = true
		case len(f) == 1 && f[0] == ")":
			inBlock = false
		case len(f) == 3 && f[0] == "require":
			mods[f[1]] = f[2]
		case inBlock && len(f) == 2:
			mods[f[0]] = f[1]
		}
	}
	if goVersion == "" || mods["go.temporal.io/server"] == "" {
		t.Fatalf("go.mod: no go directive or no go.temporal.io/server requirement")
	}
	return goVersion, mods
}

// ---------------------------------------------------------------- compose

func loadCompose(t *testing.T) *composetypes.Project {
	t.Helper()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(abs, "docker-compose.yml")
	// The same loader `docker compose` uses: schema validation against the
	// Compose Specification, interpolation, merge keys, consistency checks
	// (depends_on targets exist, named volumes are declared, ...).
	project, err := loader.LoadWithContext(context.Background(), composetypes.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []composetypes.ConfigFile{{Filename: file}},
		Environment: composetypes.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("artifactstate", true)
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

// ourServices are the services that run the artifactstate image.
func ourServices(t *testing.T, p *composetypes.Project) map[string]composetypes.ServiceConfig {
	t.Helper()
	out := map[string]composetypes.ServiceConfig{}
	for name, s := range p.Services {
		if strings.HasPrefix(s.Image, "artifactstate:") || s.Build != nil {
			out[name] = s
		}
	}
	for _, want := range []string{"api", "worker", "migrate"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("docker-compose.yml has no service %q running the artifactstate image", want)
		}
	}
	return out
}

func composeEnv(s composetypes.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	return env
}

func TestComposeLoads(t *testing.T) {
	p := loadCompose(t)
	for _, want := range []string{"cassandra", "elasticsearch", "temporal-schema", "temporal", "temporal-namespace",
		"temporal-ui", "temporal-admin-tools", "migrate", "api", "worker", "prometheus", "grafana"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("docker-compose.yml: no service %q", want)
		}
	}
	// Pinned images: no "latest", no missing tag.
	for name, s := range p.Services {
		img := s.Image
		i := strings.LastIndex(img, ":")
		if i < 0 || strings.Contains(img[i:], "/") || img[i+1:] == "latest" || img[i+1:] == "" {
			t.Errorf("service %s: image %q is not pinned to a version", name, img)
		}
	}
}

func TestComposeRolesAndEnvironment(t *testing.T) {
	known := knownEnv(t)
	p := loadCompose(t)
	for name, s := range ourServices(t, p) {
		if s.Build == nil || s.Build.Context != p.WorkingDir {
			t.Errorf("service %s: builds %v, want the repository root (the Dockerfile)", name, s.Build)
		}
		if len(s.Entrypoint) != 0 {
			t.Errorf("service %s: overrides the entrypoint %q; the image's entrypoint is the binary", name, s.Entrypoint)
		}
		if len(s.Command) == 0 || !slices.Contains(roles, s.Command[0]) {
			t.Errorf("service %s: command %q does not start with a role of the binary %v", name, s.Command, roles)
			continue
		}
		env := composeEnv(s)
		for k := range env {
			if !strings.HasPrefix(k, config.EnvPrefix) {
				t.Errorf("service %s: %s is not configuration of the binary (want ARTIFACTSTATE_* only)", name, k)
			}
		}
		cfg := checkEnv(t, "docker-compose.yml service "+name, env, known)
		role := s.Command[0]
		switch role {
		case "api", "worker":
			host, _, err := net.SplitHostPort(cfg.Temporal.Address)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := p.Services[host]; !ok {
				t.Errorf("service %s: Temporal address %q names no compose service", name, cfg.Temporal.Address)
			}
			fallthrough
		case "migrate":
			if !cfg.Cassandra.Enabled() {
				t.Errorf("service %s: no ARTIFACTSTATE_CASSANDRA_HOSTS: the read model would be off", name)
			}
			for _, h := range cfg.Cassandra.Hosts {
				host := h
				if hh, _, err := net.SplitHostPort(h); err == nil {
					host = hh
				}
				if _, ok := p.Services[host]; !ok {
					t.Errorf("service %s: Cassandra host %q names no compose service", name, h)
				}
			}
		}
		switch role {
		case "api":
			port := listenPort(t, name, cfg.API.ListenAddress)
			if !publishes(s, port) {
				t.Errorf("service %s: api listens on %d but publishes %v", name, port, s.Ports)
			}
			checkProbe(t, name, s, port)
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.API.ShutdownTimeout {
				t.Errorf("service %s: stop_grace_period must exceed api.shutdownTimeout (%v)", name, cfg.API.ShutdownTimeout)
			}
		case "worker":
			checkProbe(t, name, s, listenPort(t, name, cfg.Admin.ListenAddress))
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.Worker.StopTimeout {
				t.Errorf("service %s: stop_grace_period must exceed worker.stopTimeout (%v)", name, cfg.Worker.StopTimeout)
			}
			// `docker compose up --scale worker=3` needs replicas that do not collide.
			if s.ContainerName != "" {
				t.Errorf("service %s: container_name %q prevents --scale", name, s.ContainerName)
			}
			for _, port := range s.Ports {
				if port.Published != "" {
					t.Errorf("service %s: publishes host port %s, which prevents --scale", name, port.Published)
				}
			}
		case "migrate":
			if s.Restart == "always" || s.Restart == "unless-stopped" {
				t.Errorf("service %s: a one-shot must not restart %q", name, s.Restart)
			}
		}
	}
}

func publishes(s composetypes.ServiceConfig, target int) bool {
	for _, p := range s.Ports {
		if int(p.Target) == target && p.Published != "" {
			return true
		}
	}
	return false
}

// checkProbe: the health check GETs /readyz on the port the role serves.
func checkProbe(t *testing.T, name string, s composetypes.ServiceConfig, port int) {
	t.Helper()
	if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 {
		t.Errorf("service %s: no health check", name)
		return
	}
	test := s.HealthCheck.Test
	want := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	if test[0] != "CMD" || test[1] != "/healthprobe" || !slices.Contains(test, want) {
		t.Errorf("service %s: health check %q, want [CMD /healthprobe %s]", name, test, want)
	}
}

func TestComposeDependencies(t *testing.T) {
	p := loadCompose(t)
	oneShot := map[string]bool{}
	for name, s := range p.Services {
		if s.Restart == "" || s.Restart == "no" || strings.HasPrefix(s.Restart, "on-failure") {
			oneShot[name] = true
		}
	}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case composetypes.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("service %s waits for %s to be healthy, but %s has no health check", name, dep, dep)
				}
			case composetypes.ServiceConditionCompletedSuccessfully:
				if !oneShot[dep] {
					t.Errorf("service %s waits for %s to complete, but %s restarts %q (not a one-shot)", name, dep, dep, target.Restart)
				}
			case composetypes.ServiceConditionStarted:
			default:
				t.Errorf("service %s -> %s: condition %q", name, dep, d.Condition)
			}
		}
	}
	// The start-up order the system needs.
	wants := []struct{ svc, dep, cond string }{
		{"temporal-schema", "cassandra", composetypes.ServiceConditionHealthy},
		{"temporal-schema", "elasticsearch", composetypes.ServiceConditionHealthy},
		{"temporal", "temporal-schema", composetypes.ServiceConditionCompletedSuccessfully},
		{"temporal-namespace", "temporal", composetypes.ServiceConditionHealthy},
		{"migrate", "cassandra", composetypes.ServiceConditionHealthy},
		{"api", "migrate", composetypes.ServiceConditionCompletedSuccessfully},
		{"api", "temporal-namespace", composetypes.ServiceConditionCompletedSuccessfully},
		{"worker", "migrate", composetypes.ServiceConditionCompletedSuccessfully},
		{"worker", "temporal-namespace", composetypes.ServiceConditionCompletedSuccessfully},
		{"grafana", "prometheus", composetypes.ServiceConditionHealthy},
	}
	for _, w := range wants {
		if got := p.Services[w.svc].DependsOn[w.dep].Condition; got != w.cond {
			t.Errorf("service %s -> %s: condition %q, want %q", w.svc, w.dep, got, w.cond)
		}
	}
	// The namespace the one-shot creates is the one the roles use.
	ns := composeEnv(p.Services["temporal-namespace"])["NAMESPACE"]
	for _, role := range []string{"api", "worker"} {
		if got := composeEnv(p.Services[role])["ARTIFACTSTATE_TEMPORAL_NAMESPACE"]; got != ns {
			t.Errorf("service %s uses Temporal namespace %q, temporal-namespace creates %q", role, got, ns)
		}
	}
}

func TestComposePortsAndMounts(t *testing.T) {
	p := loadCompose(t)
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := published[key]; dup {
				t.Errorf("host port %s published by both %s and %s", key, other, name)
			}
			published[key] = name
		}
		for _, v := range s.Volumes {
			if v.Type != composetypes.VolumeTypeBind {
				continue
			}
			rel, err := filepath.Rel(p.WorkingDir, v.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("service %s mounts %s from outside the repository", name, v.Source)
				continue
			}
			rel = filepath.ToSlash(rel)
			if !exists(rel) {
				if slices.Contains(leadOwned, rel) {
					t.Logf("service %s mounts %s, which does not exist yet (added by another change): tolerated", name, rel)
					continue
				}
				t.Errorf("service %s mounts %s, which does not exist", name, rel)
			}
		}
	}
	for _, want := range []string{"8082", "7233", "8080", "9090", "3000"} {
		if _, ok := published[":"+want+"/tcp"]; !ok {
			t.Errorf("host port %s is not published (the README lists it)", want)
		}
	}
}

// TestComposeTemporalVersions: the Temporal server, admin tools and UI images
// are the versions the binary embeds and is tested against (go.mod).
func TestComposeTemporalVersions(t *testing.T) {
	_, mods := goModVersions(t)
	server := strings.TrimPrefix(mods["go.temporal.io/server"], "v")
	ui := strings.TrimPrefix(mods["github.com/temporalio/ui-server/v2"], "v")
	p := loadCompose(t)
	for name, want := range map[string]string{
		"temporal":             "temporalio/server:" + server,
		"temporal-schema":      "temporalio/admin-tools:" + server,
		"temporal-namespace":   "temporalio/admin-tools:" + server,
		"temporal-admin-tools": "temporalio/admin-tools:" + server,
		"temporal-ui":          "temporalio/ui:" + ui,
	} {
		if got := p.Services[name].Image; got != want {
			t.Errorf("service %s: image %q, want %q (go.mod)", name, got, want)
		}
	}
	env := composeEnv(p.Services["temporal"])
	if env["DB"] != "cassandra" || env["CASSANDRA_SEEDS"] != "cassandra" || env["ENABLE_ES"] != "true" || env["ES_SEEDS"] != "elasticsearch" {
		t.Errorf("temporal must persist to the cassandra service with Elasticsearch visibility: %v", env)
	}
	if got, want := env["ES_VIS_INDEX"], composeEnv(p.Services["temporal-schema"])["ES_VISIBILITY_INDEX"]; got != want {
		t.Errorf("temporal reads visibility index %q, temporal-schema creates %q", got, want)
	}
	if got, want := env["KEYSPACE"], composeEnv(p.Services["temporal-schema"])["TEMPORAL_KEYSPACE"]; got != want {
		t.Errorf("temporal uses keyspace %q, temporal-schema creates %q", got, want)
	}
	for _, script := range []string{"deploy/compose/temporal/setup-schema.sh", "deploy/compose/temporal/create-namespace.sh"} {
		if !exists(script) {
			t.Errorf("%s is missing", script)
			continue
		}
		// The admin-tools image runs them with /bin/sh (busybox): POSIX syntax.
		if sh, err := exec.LookPath("sh"); err == nil {
			if out, err := exec.Command(sh, "-n", filepath.Join(repoRoot, script)).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", script, err, out)
			}
		}
	}
}

// TestComposeObservability: Prometheus scrapes every role on the ports they
// serve and loads the alert rules; Grafana provisions the dashboards.
func TestComposeObservability(t *testing.T) {
	p := loadCompose(t)
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(read(t, "deploy/compose/prometheus/prometheus.yml")))
	dec.KnownFields(false)
	if err := dec.Decode(&prom); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]int{} // service -> port
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[n] = d.Port
			}
		}
		for _, s := range sc.StaticConfigs {
			for _, target := range s.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Fatalf("scrape target %q: %v", target, err)
				}
				n, _ := strconv.Atoi(port)
				scraped[host] = n
			}
		}
	}
	known := knownEnv(t)
	for _, role := range []string{"api", "worker"} {
		cfg := checkEnv(t, "service "+role, composeEnv(p.Services[role]), known)
		want := listenPort(t, role, cfg.Admin.ListenAddress) // every role's /metrics is on its admin listener
		if got, ok := scraped[role]; !ok || got != want {
			t.Errorf("Prometheus scrapes %s on port %d, the %s role serves /metrics on %d", role, got, role, want)
		}
	}
	if got := scraped["temporal"]; got == 0 || !strings.HasSuffix(composeEnv(p.Services["temporal"])["PROMETHEUS_ENDPOINT"], ":"+strconv.Itoa(got)) {
		t.Errorf("Prometheus scrapes temporal on %d, PROMETHEUS_ENDPOINT is %q", got, composeEnv(p.Services["temporal"])["PROMETHEUS_ENDPOINT"])
	}

	mounts := map[string]string{} // repo path -> container path, per service
	for _, svc := range []string{"prometheus", "grafana"} {
		for _, v := range p.Services[svc].Volumes {
			if v.Type == composetypes.VolumeTypeBind {
				rel, _ := filepath.Rel(p.WorkingDir, v.Source)
				mounts[filepath.ToSlash(rel)] = v.Target
			}
		}
	}
	alerts, ok := mounts["deploy/prometheus/alerts.yml"]
	if !ok {
		t.Fatal("prometheus does not mount deploy/prometheus/alerts.yml")
	}
	matched := false
	for _, rf := range prom.RuleFiles {
		if ok, _ := path.Match(rf, alerts); ok {
			matched = true
		}
	}
	if !matched {
		t.Errorf("rule_files %q do not match the mounted alert rules %s", prom.RuleFiles, alerts)
	}
	if mounts["deploy/compose/prometheus/prometheus.yml"] != "/etc/prometheus/prometheus.yml" {
		t.Errorf("prometheus does not load deploy/compose/prometheus/prometheus.yml")
	}

	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(read(t, "deploy/compose/grafana/provisioning/dashboards/artifactstate.yml"), &providers); err != nil {
		t.Fatal(err)
	}
	if len(providers.Providers) != 1 || providers.Providers[0].Options.Path != mounts["deploy/grafana/dashboards"] {
		t.Errorf("Grafana's dashboard provider reads %+v, the dashboards are mounted at %q", providers.Providers, mounts["deploy/grafana/dashboards"])
	}
	if mounts["deploy/compose/grafana/provisioning"] != "/etc/grafana/provisioning" {
		t.Errorf("grafana does not mount its provisioning directory")
	}
}

// TestLeadOwnedObservabilityFiles checks, once they exist, that the alert
// rules are a Prometheus rule file and that the dashboards use a data source
// file provisioning can resolve (the provisioned uid "prometheus", or a
// data source variable of the dashboard).
func TestLeadOwnedObservabilityFiles(t *testing.T) {
	if !exists("deploy/prometheus/alerts.yml") {
		t.Log("deploy/prometheus/alerts.yml does not exist yet: not checked")
	} else {
		var rules struct {
			Groups []struct {
				Name  string           `yaml:"name"`
				Rules []map[string]any `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(read(t, "deploy/prometheus/alerts.yml"), &rules); err != nil || len(rules.Groups) == 0 {
			t.Errorf("deploy/prometheus/alerts.yml is not a Prometheus rule file (groups: ...): %v", err)
		}
	}
	var dsUID string
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(read(t, "deploy/compose/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %v", err)
	}
	dsUID = ds.Datasources[0].UID
	dir := filepath.Join(repoRoot, "deploy", "grafana", "dashboards")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		t.Log("deploy/grafana/dashboards does not exist yet: not checked")
		return
	} else if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var dash map[string]any
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		vars := map[string]bool{}
		if tm, ok := dash["templating"].(map[string]any); ok {
			list, _ := tm["list"].([]any)
			for _, v := range list {
				if m, ok := v.(map[string]any); ok {
					if name, ok := m["name"].(string); ok {
						vars[name] = true
					}
				}
			}
		}
		walkDatasources(dash, func(uid string) {
			switch {
			case uid == dsUID, uid == "grafana", uid == "-- Grafana --", uid == "-- Mixed --", uid == "-- Dashboard --":
			case strings.HasPrefix(uid, "$"):
				name := strings.Trim(strings.TrimPrefix(uid, "$"), "{}")
				if !vars[name] {
					t.Errorf("%s: data source %q is neither the provisioned uid %q nor a variable of the dashboard (file provisioning does not resolve __inputs)", e.Name(), uid, dsUID)
				}
			default:
				t.Errorf("%s: data source uid %q is not the provisioned %q", e.Name(), uid, dsUID)
			}
		})
	}
}

func walkDatasources(v any, f func(uid string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "datasource" {
				switch d := c.(type) {
				case string:
					f(d)
				case map[string]any:
					if uid, ok := d["uid"].(string); ok {
						f(uid)
					}
				}
				continue
			}
			walkDatasources(c, f)
		}
	case []any:
		for _, c := range x {
			walkDatasources(c, f)
		}
	}
}

// ---------------------------------------------------------------- Dockerfile

type dockerInstr struct {
	cmd  string // upper case
	args string
}

// parseDockerfile joins continuation lines and drops comments.
func parseDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(read(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
	}
	return out
}

// dockerBuildMake returns the Dockerfile's `make build ...` invocation.
func dockerBuildMake(t *testing.T, instrs []dockerInstr) string {
	t.Helper()
	re := regexp.MustCompile(`(?:^|&&\s*|\s)(make build(?: [A-Z]+=\S+)*)`)
	var found []string
	for _, in := range instrs {
		if in.cmd != "RUN" {
			continue
		}
		if m := re.FindStringSubmatch(in.args); m != nil {
			found = append(found, strings.TrimSpace(m[1]))
		}
	}
	if len(found) != 1 {
		t.Fatalf("the Dockerfile must build the binary with exactly one `make build` (the CI build), found %q", found)
	}
	return found[0]
}

func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t)
	goVersion, _ := goModVersions(t)
	args := map[string]string{}
	var froms []string
	var entrypoint, user string
	var copies []string
	for _, in := range instrs {
		switch in.cmd {
		case "ARG":
			if k, v, ok := strings.Cut(in.args, "="); ok {
				if _, seen := args[k]; !seen {
					args[k] = v
				}
			}
		case "FROM":
			froms = append(froms, in.args)
		case "ENTRYPOINT":
			entrypoint = in.args
		case "USER":
			user = in.args
		case "COPY":
			copies = append(copies, in.args)
		}
	}
	if args["GO_VERSION"] != goVersion {
		t.Errorf("Dockerfile builds with Go %q, go.mod says %q", args["GO_VERSION"], goVersion)
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:${GO_VERSION}-") || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("build stage: FROM %q", froms)
	}
	if len(froms) == 2 && froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime stage FROM %q, want the distroless static nonroot image", froms[1])
	}
	if user != "65532:65532" {
		t.Errorf("USER %q, want the distroless nonroot uid 65532", user)
	}
	if entrypoint != `["/artifactstate"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/artifactstate\"] (the role is the first argument)", entrypoint)
	}
	mk := dockerBuildMake(t, instrs)
	if mk != "make build VERSION=${VERSION} COMMIT=${COMMIT}" {
		t.Errorf("Dockerfile runs %q, want `make build VERSION=${VERSION} COMMIT=${COMMIT}`", mk)
	}
	if !slices.Contains(copies, "--from=build /src/bin/artifactstate /artifactstate") {
		t.Errorf("the runtime stage does not copy the binary `make build` writes (bin/artifactstate): %q", copies)
	}
	// The build info the Makefile bakes in comes from build arguments.
	if _, ok := args["VERSION"]; !ok {
		t.Error("Dockerfile has no ARG VERSION")
	}
	if _, ok := args["COMMIT"]; !ok {
		t.Error("Dockerfile has no ARG COMMIT")
	}
}

// TestDockerBuildIsTheMakefileBuild expands the Dockerfile's `make build`
// with make itself (dry run): it is the static, trimmed build with the
// version and commit linked in that CI runs.
func TestDockerBuildIsTheMakefileBuild(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	mk := dockerBuildMake(t, parseDockerfile(t))
	argv := strings.Fields(strings.NewReplacer("${VERSION}", "v9.8.7", "${COMMIT}", "abc1234").Replace(mk))
	cmd := exec.Command(argv[0], append([]string{"-n", "--no-print-directory"}, argv[1:]...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	want := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=v9.8.7 -X main.commit=abc1234" -o bin/artifactstate ./cmd/artifactstate`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("the Dockerfile's %q runs\n  %s\nwant\n  %s", mk, got, want)
	}
}

// TestDockerBuildRuns runs the Dockerfile's build command for real (minutes
// on two cores) and the built binary's version command. Opt in with
// ARTIFACTSTATE_TEST_DOCKER_BUILD=1.
func TestDockerBuildRuns(t *testing.T) {
	if os.Getenv("ARTIFACTSTATE_TEST_DOCKER_BUILD") != "1" {
		t.Skip("set ARTIFACTSTATE_TEST_DOCKER_BUILD=1 to run the image's build command")
	}
	mk := dockerBuildMake(t, parseDockerfile(t))
	bin := filepath.Join(t.TempDir(), "artifactstate")
	argv := strings.Fields(strings.NewReplacer("${VERSION}", "v9.8.7", "${COMMIT}", "abc1234").Replace(mk))
	cmd := exec.Command(argv[0], append(argv[1:], "BIN="+bin)...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v9.8.7") || !strings.Contains(string(out), "abc1234") {
		t.Fatalf("artifactstate version: %v: %s", err, out)
	}
}

// TestDockerignore: the build context keeps what `make build` compiles.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(read(t, ".dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			if dockerignoreMatch(pat, p) {
				out = !neg
			}
		}
		return out
	}
	for _, keep := range []string{"go.mod", "go.sum", "Makefile", "cmd/artifactstate/main.go", "server/openapi.yaml",
		"internal/readmodel/schema/001_tables.cql", "deploy/compose/healthprobe/main.go"} {
		if ignored(keep) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", keep)
		}
	}
	for _, drop := range []string{".git/HEAD", "bin/artifactstate", ".artifactstate/temporal.db", "deploy/k8s/base/api.yaml"} {
		if !ignored(drop) {
			t.Errorf(".dockerignore sends %s to the build", drop)
		}
	}
}

// dockerignoreMatch: a pattern matches the path or one of its parents;
// "**/" matches any number of directories.
func dockerignoreMatch(pat, p string) bool {
	pat = strings.TrimSuffix(strings.TrimPrefix(pat, "/"), "/")
	for cur := p; cur != "." && cur != "/"; cur = path.Dir(cur) {
		if strings.HasPrefix(pat, "**/") {
			if ok, _ := path.Match(strings.TrimPrefix(pat, "**/"), path.Base(cur)); ok {
				return true
			}
		}
		if ok, _ := path.Match(pat, cur); ok {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- Kubernetes

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

// overlay describes what each overlay must satisfy.
type overlay struct {
	dir          string
	dependencies string   // the matching deploy/k8s/dependencies directory
	temporal     string   // the Temporal Helm values it pairs with
	outOfBand    []string // Secrets the overlay expects to exist in the cluster
	minReplicas  int32
}

var overlays = []overlay{
	{dir: "deploy/k8s/overlays/local", dependencies: "deploy/k8s/dependencies/local",
		temporal: "deploy/k8s/dependencies/temporal/values-local.yaml", minReplicas: 1},
	{dir: "deploy/k8s/overlays/production", dependencies: "deploy/k8s/dependencies/production",
		temporal:  "deploy/k8s/dependencies/temporal/values-production.yaml",
		outOfBand: []string{"artifactstate-cassandra"}, minReplicas: 3},
}

const appNamespace = "artifactstate"

func TestKubernetesOverlays(t *testing.T) {
	known := knownEnv(t)
	for _, ov := range overlays {
		t.Run(path.Base(ov.dir), func(t *testing.T) {
			objs := kustomizeBuild(t, ov.dir, "Certificate")
			checkOverlay(t, ov, objs, known)
		})
	}
}

func checkOverlay(t *testing.T, ov overlay, objs []k8sObject, known map[string]bool) {
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
		if o.kind != "Namespace" && o.namespace != appNamespace {
			t.Errorf("%s %s is in namespace %q, want %q", o.kind, o.name, o.namespace, appNamespace)
		}
	}
	for kind, n := range map[string]int{"Deployment": 2, "Service": 1, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2,
		"Job": 1, "ConfigMap": 1, "ServiceMonitor": 1, "PodMonitor": 1, "Namespace": 1, "ServiceAccount": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d", kinds[kind], kind, n)
		}
	}
	if kinds["NetworkPolicy"] < 3 {
		t.Errorf("%d NetworkPolicies", kinds["NetworkPolicy"])
	}

	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range find[*corev1.ConfigMap](objs) {
		configMaps[cm.Name] = cm
		for k := range cm.Data {
			if !known[k] {
				t.Errorf("ConfigMap %s: key %s is not an environment variable of the typed config", cm.Name, k)
			}
		}
	}
	secrets := map[string]*corev1.Secret{}
	for _, s := range find[*corev1.Secret](objs) {
		secrets[s.Name] = s
	}

	// Every pod template: its role, its environment, hardening, resources.
	type podOf struct {
		kind, name string
		spec       corev1.PodSpec
		labels     map[string]string
	}
	var pods []podOf
	for _, d := range find[*appsv1.Deployment](objs) {
		pods = append(pods, podOf{"Deployment", d.Name, d.Spec.Template.Spec, d.Spec.Template.Labels})
		sel := d.Spec.Selector.MatchLabels
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("Deployment %s: selector %v does not select its pods %v", d.Name, sel, d.Spec.Template.Labels)
			}
		}
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas: the HorizontalPodAutoscaler owns them", d.Name)
		}
	}
	for _, j := range find[*batchv1.Job](objs) {
		pods = append(pods, podOf{"Job", j.Name, j.Spec.Template.Spec, j.Spec.Template.Labels})
	}
	rolePods := map[string]podOf{}
	roleCfg := map[string]config.Config{}
	for _, p := range pods {
		where := p.kind + " " + p.name
		if len(p.spec.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(p.spec.Containers))
			continue
		}
		c := p.spec.Containers[0]
		if len(c.Command) != 0 || len(c.Args) == 0 || !slices.Contains(roles, c.Args[0]) {
			t.Errorf("%s: command %q args %q: want the image's entrypoint with a role %v", where, c.Command, c.Args, roles)
			continue
		}
		role := c.Args[0]
		rolePods[role] = p
		if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q is not pinned", where, c.Image)
		}
		// The environment the container really gets.
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
		checkSecretFiles(t, where, p.spec, appEnv)
		cfg := checkEnv(t, where, appEnv, known)
		roleCfg[role] = cfg
		if role != "version" && !cfg.Cassandra.Enabled() {
			t.Errorf("%s: no Cassandra hosts: the read model would be off", where)
		}

		// Hardening and resources.
		psc := p.spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token it never uses", where)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) {
			t.Errorf("%s: container securityContext must set readOnlyRootFilesystem, no privilege escalation, drop ALL", where)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s: no %s request", where, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok && r == corev1.ResourceMemory {
				t.Errorf("%s: no %s limit", where, r)
			}
			if req, lim := c.Resources.Requests[r], c.Resources.Limits[r]; !lim.IsZero() && req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s above the limit %s", where, r, req.String(), lim.String())
			}
		}
	}

	// api and worker: ports, probes on the endpoints the binary serves,
	// graceful termination longer than the drain.
	for _, role := range []string{"api", "worker"} {
		p, ok := rolePods[role]
		if !ok {
			t.Errorf("no Deployment runs the %s role", role)
			continue
		}
		cfg := roleCfg[role]
		c := p.spec.Containers[0]
		port, drain := listenPort(t, role, cfg.API.ListenAddress), cfg.API.ShutdownTimeout
		if role == "worker" {
			port, drain = listenPort(t, role, cfg.Admin.ListenAddress), cfg.Worker.StopTimeout
		}
		checkHTTPProbe(t, role+" liveness", c, c.LivenessProbe, "/healthz", port)
		checkHTTPProbe(t, role+" readiness", c, c.ReadinessProbe, "/readyz", port)
		if c.StartupProbe != nil {
			checkHTTPProbe(t, role+" startup", c, c.StartupProbe, "/healthz", port)
		}
		var preStop time.Duration
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if c.Lifecycle.PreStop.Sleep == nil {
				t.Errorf("%s: preStop must be a sleep action (the image has no shell)", role)
			} else {
				preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
		}
		// The process's own stop budget (cmd/artifactstate: fx.StopTimeout).
		budget := cfg.API.ShutdownTimeout + cfg.Worker.StopTimeout + 10*time.Second
		grace := time.Duration(ptrOr(p.spec.TerminationGracePeriodSeconds, 30)) * time.Second
		if grace <= preStop+drain || grace <= preStop+budget {
			t.Errorf("%s: terminationGracePeriodSeconds %v must exceed preStop %v + drain %v and the stop budget %v",
				role, grace, preStop, drain, budget)
		}
		if len(p.spec.TopologySpreadConstraints) == 0 {
			t.Errorf("%s: no topology spread constraints", role)
		}
	}
	if w, ok := rolePods["worker"]; ok && w.spec.Containers[0].Env != nil {
		found := false
		for _, e := range w.spec.Containers[0].Env {
			found = found || e.Name == "ARTIFACTSTATE_WORKER_IDENTITY"
		}
		if !found {
			t.Error("worker: ARTIFACTSTATE_WORKER_IDENTITY is not set from the pod name")
		}
	}
	if j, ok := rolePods["migrate"]; !ok {
		t.Error("no Job runs `migrate`")
	} else if j.kind != "Job" || (j.spec.RestartPolicy != corev1.RestartPolicyNever && j.spec.RestartPolicy != corev1.RestartPolicyOnFailure) {
		t.Errorf("migrate runs in a %s with restartPolicy %q", j.kind, j.spec.RestartPolicy)
	}

	if _, ok := rolePods["api"]; !ok {
		t.Fatal("no Deployment runs the api role")
	}
	if _, ok := rolePods["worker"]; !ok {
		t.Fatal("no Deployment runs the worker role")
	}

	// The Service exposes the api's port and selects the api pods only.
	svc := byName[*corev1.Service](t, objs, "artifactstate-api")
	api := rolePods["api"]
	if !selects(svc.Spec.Selector, api.labels) || selects(svc.Spec.Selector, rolePods["worker"].labels) {
		t.Errorf("Service %s selector %v must select the api pods only", svc.Name, svc.Spec.Selector)
	}
	// Its ports: the API, and the admin listener for the ServiceMonitor.
	for _, sp := range svc.Spec.Ports {
		n := resolvePort(t, api.spec.Containers[0], sp.TargetPort)
		apiPort, adminPort := listenPort(t, "api", roleCfg["api"].API.ListenAddress), listenPort(t, "api", roleCfg["api"].Admin.ListenAddress)
		if n != apiPort && n != adminPort {
			t.Errorf("Service port %s targets container port %d: the api listens on %d (API) and %d (admin)", sp.Name, n, apiPort, adminPort)
		}
	}

	// Autoscalers and disruption budgets.
	deployments := map[string]*appsv1.Deployment{}
	for _, d := range find[*appsv1.Deployment](objs) {
		deployments[d.Name] = d
	}
	scaled := map[string]bool{}
	for _, h := range find[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		ref := h.Spec.ScaleTargetRef
		if _, ok := deployments[ref.Name]; !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA %s scales %v, not one of the Deployments", h.Name, ref)
		}
		scaled[ref.Name] = true
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != ov.minReplicas || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: min %v max %d, want min %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas, ov.minReplicas)
		}
		cpu := false
		for _, m := range h.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
		}
		if !cpu {
			t.Errorf("HPA %s does not scale on CPU", h.Name)
		}
	}
	for name := range deployments {
		if !scaled[name] {
			t.Errorf("Deployment %s has no HorizontalPodAutoscaler", name)
		}
	}
	covered := map[string]bool{}
	for _, pdb := range find[*policyv1.PodDisruptionBudget](objs) {
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: set exactly one of minAvailable and maxUnavailable", pdb.Name)
		}
		if pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() < 1 && pdb.Spec.MaxUnavailable.Type == intstr.Int {
			t.Errorf("PDB %s: maxUnavailable 0 blocks every drain", pdb.Name)
		}
		for name, d := range deployments {
			if selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				covered[name] = true
			}
		}
	}
	for name := range deployments {
		if !covered[name] {
			t.Errorf("Deployment %s has no PodDisruptionBudget", name)
		}
	}

	// Prometheus Operator: the api through its Service, the workers' pods.
	for _, sm := range find[*monitoringv1.ServiceMonitor](objs) {
		if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) {
			t.Errorf("ServiceMonitor %s selects %v, not the api Service %v", sm.Name, sm.Spec.Selector.MatchLabels, svc.Labels)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor %s endpoint %s%s is not the Service's /metrics", sm.Name, ep.Port, ep.Path)
			}
		}
	}
	// The job label: the one the alert rules and dashboards select on (the
	// compose scrape jobs), not the operator's default.
	jobOf := func(what string, rl []monitoringv1.RelabelConfig) string {
		for _, r := range rl {
			if r.TargetLabel == "job" && r.Replacement != nil {
				return *r.Replacement
			}
		}
		t.Errorf("%s: no relabeling sets the job label", what)
		return ""
	}
	for _, sm := range find[*monitoringv1.ServiceMonitor](objs) {
		for _, ep := range sm.Spec.Endpoints {
			if job := jobOf("ServiceMonitor "+sm.Name, ep.RelabelConfigs); job != "artifactstate-api" {
				t.Errorf("ServiceMonitor %s: job %q, want artifactstate-api", sm.Name, job)
			}
		}
	}
	for _, pm := range find[*monitoringv1.PodMonitor](objs) {
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if job := jobOf("PodMonitor "+pm.Name, ep.RelabelConfigs); job != "artifactstate-worker" {
				t.Errorf("PodMonitor %s: job %q, want artifactstate-worker", pm.Name, job)
			}
		}
	}
	for _, pm := range find[*monitoringv1.PodMonitor](objs) {
		w := rolePods["worker"]
		if !selects(pm.Spec.Selector.MatchLabels, w.labels) {
			t.Errorf("PodMonitor %s does not select the worker pods", pm.Name)
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if ep.Port == nil || resolvePort(t, w.spec.Containers[0], intstr.FromString(*ep.Port)) != listenPort(t, "worker", roleCfg["worker"].Admin.ListenAddress) || ep.Path != "/metrics" {
				t.Errorf("PodMonitor %s endpoint %v%s is not the worker's /metrics", pm.Name, ep.Port, ep.Path)
			}
		}
	}

	checkNetworkPolicies(t, objs, rolePods["api"].labels, rolePods["worker"].labels, roleCfg["api"])
	checkDependencies(t, ov, roleCfg["api"], secrets)
}

// checkSecretFiles: every *_FILE setting names a file in a volume the
// container mounts from a Secret (secrets are files, never environment);
// the value is replaced with a stand-in file so the configuration validates.
func checkSecretFiles(t *testing.T, where string, spec corev1.PodSpec, env map[string]string) {
	t.Helper()
	secretVolumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
		}
	}
	for name, value := range env {
		if strings.Contains(name, "PASSWORD") && !strings.HasSuffix(name, "_FILE") || strings.HasSuffix(name, "_API_KEY") {
			t.Errorf("%s: %s is a secret in the environment: use the _FILE setting and a mounted Secret", where, name)
		}
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		mounted := slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
			return secretVolumes[m.Name] && strings.HasPrefix(value, strings.TrimSuffix(m.MountPath, "/")+"/")
		})
		if !mounted {
			t.Errorf("%s: %s=%s is not in a mounted Secret", where, name, value)
		}
		standIn := filepath.Join(t.TempDir(), filepath.Base(value))
		if err := os.WriteFile(standIn, []byte("stand-in"), 0o600); err != nil {
			t.Fatal(err)
		}
		env[name] = standIn
	}
}

// TestProductionOverlayIsSecure: the production overlay turns on what the
// README's Security section promises.
func TestProductionOverlayIsSecure(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/k8s/overlays/production", "Certificate")
	var cm *corev1.ConfigMap
	for _, c := range find[*corev1.ConfigMap](objs) {
		if c.Name == "artifactstate-config" || strings.HasPrefix(c.Name, "artifactstate-config-") {
			cm = c
		}
	}
	if cm == nil {
		t.Fatal("no artifactstate-config ConfigMap")
	}
	env := cm.Data
	for name, want := range map[string]string{
		"ARTIFACTSTATE_AUTH_ENABLED":          "true",
		"ARTIFACTSTATE_TEMPORAL_TLS_ENABLED":  "true",
		"ARTIFACTSTATE_CASSANDRA_TLS_ENABLED": "true",
		"ARTIFACTSTATE_PRIVACY_USER_IDS":      "hash",
	} {
		if env[name] != want {
			t.Errorf("production: %s=%q, want %q", name, env[name], want)
		}
	}
	for _, name := range []string{"ARTIFACTSTATE_AUTH_JWKS_URL", "ARTIFACTSTATE_AUTH_ISSUER", "ARTIFACTSTATE_AUTH_AUDIENCE",
		"ARTIFACTSTATE_TEMPORAL_TLS_CERT_FILE", "ARTIFACTSTATE_CASSANDRA_TLS_CERT_FILE", "ARTIFACTSTATE_TRACING_CA_FILE",
		"ARTIFACTSTATE_TRACING_CERT_FILE", "ARTIFACTSTATE_TEMPORAL_ENCRYPTION_KEYS_FILE", "ARTIFACTSTATE_PRIVACY_HASH_KEY_FILE",
		"ARTIFACTSTATE_API_RATE_LIMIT_PER_CLIENT", "ARTIFACTSTATE_API_RATE_LIMIT_GLOBAL"} {
		if env[name] == "" {
			t.Errorf("production: %s is not set", name)
		}
	}
	if env["ARTIFACTSTATE_TRACING_INSECURE"] == "true" {
		t.Error("production exports traces without TLS")
	}
	if !slices.ContainsFunc(objs, func(o k8sObject) bool { return o.kind == "Certificate" && o.name == "artifactstate-client-tls" }) {
		t.Error("production: no cert-manager Certificate artifactstate-client-tls for the client certificate")
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

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

func checkHTTPProbe(t *testing.T, what string, c corev1.Container, p *corev1.Probe, wantPath string, wantPort int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no httpGet probe", what)
		return
	}
	if p.HTTPGet.Path != wantPath {
		t.Errorf("%s probe: path %s, want %s", what, p.HTTPGet.Path, wantPath)
	}
	if got := resolvePort(t, c, p.HTTPGet.Port); got != wantPort {
		t.Errorf("%s probe: port %d, the role serves %s on %d", what, got, wantPath, wantPort)
	}
}

// checkNetworkPolicies: default deny, API ingress on its port, worker metrics
// from the monitoring namespace, egress to DNS, Temporal and Cassandra.
func checkNetworkPolicies(t *testing.T, objs []k8sObject, apiLabels, workerLabels map[string]string, cfg config.Config) {
	t.Helper()
	nps := find[*networkingv1.NetworkPolicy](objs)
	denyAll := false
	allowsIngress := func(labels map[string]string, port int, fromNamespace string) bool {
		for _, np := range nps {
			if !selects(np.Spec.PodSelector.MatchLabels, labels) {
				continue
			}
			for _, rule := range np.Spec.Ingress {
				fromOK := len(rule.From) == 0
				for _, peer := range rule.From {
					if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == fromNamespace {
						fromOK = true
					}
				}
				for _, p := range rule.Ports {
					if fromOK && p.Port != nil && p.Port.IntValue() == port {
						return true
					}
				}
			}
		}
		return false
	}
	allowsEgress := func(labels map[string]string, port int) bool {
		for _, np := range nps {
			if !selects(np.Spec.PodSelector.MatchLabels, labels) {
				continue
			}
			for _, rule := range np.Spec.Egress {
				for _, p := range rule.Ports {
					if p.Port != nil && p.Port.IntValue() == port {
						return true
					}
				}
			}
		}
		return false
	}
	for _, np := range nps {
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 {
			denyAll = true
		}
	}
	if !denyAll {
		t.Error("no default-deny NetworkPolicy")
	}
	apiPort := listenPort(t, "api", cfg.API.ListenAddress)
	if !allowsIngress(apiLabels, apiPort, "") {
		t.Errorf("no NetworkPolicy lets clients reach the api on %d", apiPort)
	}
	metricsPort := listenPort(t, "worker", cfg.Admin.ListenAddress)
	if !allowsIngress(workerLabels, metricsPort, "monitoring") {
		t.Errorf("no NetworkPolicy lets the monitoring namespace scrape workers on %d", metricsPort)
	}
	temporalPort := listenPort(t, "temporal", cfg.Temporal.Address)
	for _, labels := range []map[string]string{apiLabels, workerLabels} {
		for _, port := range []int{53, temporalPort, 9042} {
			if !allowsEgress(labels, port) {
				t.Errorf("pods %v may not reach port %d (DNS, Temporal, Cassandra)", labels, port)
			}
		}
	}
}

// checkDependencies: the addresses the app dials are the Services the
// operators and the Temporal chart create from deploy/k8s/dependencies, and
// the Temporal version is the one go.mod builds against.
func checkDependencies(t *testing.T, ov overlay, cfg config.Config, appSecrets map[string]*corev1.Secret) {
	t.Helper()
	objs := kustomizeBuild(t, ov.dependencies, "CassandraDatacenter", "Elasticsearch")
	// Credentials the overlay generates are the ones the Cassandra role is
	// created from.
	for _, s := range find[*corev1.Secret](objs) {
		app, ok := appSecrets[s.Name]
		if !ok {
			for name, sec := range appSecrets {
				if strings.HasPrefix(name, s.Name+"-") {
					app, ok = sec, true
				}
			}
		}
		if !ok {
			continue
		}
		for k, v := range s.StringData {
			if string(app.Data[k]) != v {
				t.Errorf("%s: Secret %s/%s key %s differs from the overlay's Secret %s", ov.dependencies, s.Namespace, s.Name, k, app.Name)
			}
		}
	}
	var dc struct {
		Metadata struct{ Name, Namespace string }
		Spec     struct {
			ClusterName   string `json:"clusterName"`
			ServerVersion string `json:"serverVersion"`
			Size          int    `json:"size"`
			Users         []struct {
				SecretName string `json:"secretName"`
			} `json:"users"`
		}
	}
	var es struct {
		Metadata struct{ Name, Namespace string }
		Spec     struct{ Version string }
	}
	for _, o := range objs {
		switch o.kind {
		case "CassandraDatacenter":
			if o.apiVersion != "cassandra.datastax.com/v1beta1" {
				t.Errorf("CassandraDatacenter apiVersion %s", o.apiVersion)
			}
			if err := json.Unmarshal(o.raw, &dc); err != nil {
				t.Fatal(err)
			}
		case "Elasticsearch":
			if o.apiVersion != "elasticsearch.k8s.elastic.co/v1" {
				t.Errorf("Elasticsearch apiVersion %s", o.apiVersion)
			}
			if err := json.Unmarshal(o.raw, &es); err != nil {
				t.Fatal(err)
			}
		}
	}
	cassandraSvc := fmt.Sprintf("%s-%s-service.%s.svc.cluster.local", dc.Spec.ClusterName, dc.Metadata.Name, dc.Metadata.Namespace)
	for _, h := range cfg.Cassandra.Hosts {
		if host, _, _ := net.SplitHostPort(h); host != cassandraSvc {
			t.Errorf("%s: Cassandra host %q, cass-operator serves %s", ov.dir, h, cassandraSvc)
		}
	}
	if cfg.Cassandra.LocalDC != dc.Metadata.Name {
		t.Errorf("%s: Cassandra local DC %q, the datacenter is %q", ov.dir, cfg.Cassandra.LocalDC, dc.Metadata.Name)
	}
	switch cfg.Cassandra.Replication.Class {
	case "NetworkTopologyStrategy":
		for name, n := range cfg.Cassandra.Replication.Datacenters {
			if name != dc.Metadata.Name || n > dc.Spec.Size {
				t.Errorf("%s: replication %s:%d, the datacenter is %s with %d nodes", ov.dir, name, n, dc.Metadata.Name, dc.Spec.Size)
			}
		}
	case "SimpleStrategy":
		if cfg.Cassandra.Replication.ReplicationFactor > dc.Spec.Size {
			t.Errorf("%s: replication factor %d on %d nodes", ov.dir, cfg.Cassandra.Replication.ReplicationFactor, dc.Spec.Size)
		}
	}
	if !slices.ContainsFunc(dc.Spec.Users, func(u struct {
		SecretName string `json:"secretName"`
	}) bool {
		return u.SecretName == "artifactstate-cassandra"
	}) {
		t.Errorf("%s: the CassandraDatacenter creates no role from the Secret artifactstate-cassandra", ov.dependencies)
	}

	// The Temporal Helm values.
	var values struct {
		Server struct {
			Image  struct{ Tag string }
			Config struct {
				Namespaces struct {
					Create    bool
					Namespace []struct{ Name string }
				}
				Persistence struct {
					DefaultStore    string `yaml:"defaultStore"`
					VisibilityStore string `yaml:"visibilityStore"`
					Datastores      map[string]struct {
						Cassandra *struct {
							Hosts    string
							Port     int
							Keyspace string
						}
						Elasticsearch *struct {
							URL struct{ Scheme, Host string }
						}
					}
				}
			}
		}
		Admintools struct{ Image struct{ Tag string } }
		Web        struct{ Image struct{ Tag string } }
	}
	if err := yaml.Unmarshal(read(t, ov.temporal), &values); err != nil {
		t.Fatalf("%s: %v", ov.temporal, err)
	}
	_, mods := goModVersions(t)
	server := strings.TrimPrefix(mods["go.temporal.io/server"], "v")
	ui := strings.TrimPrefix(mods["github.com/temporalio/ui-server/v2"], "v")
	if values.Server.Image.Tag != server || values.Admintools.Image.Tag != server || values.Web.Image.Tag != ui {
		t.Errorf("%s: server %s, admin tools %s, UI %s; go.mod builds against server %s and UI %s", ov.temporal,
			values.Server.Image.Tag, values.Admintools.Image.Tag, values.Web.Image.Tag, server, ui)
	}
	if host, _, _ := net.SplitHostPort(cfg.Temporal.Address); host != "temporal-frontend.temporal.svc.cluster.local" {
		t.Errorf("Temporal address %s is not the chart's frontend Service (release temporal, namespace temporal)", cfg.Temporal.Address)
	}
	nsOK := false
	for _, n := range values.Server.Config.Namespaces.Namespace {
		nsOK = nsOK || n.Name == cfg.Temporal.Namespace
	}
	if !values.Server.Config.Namespaces.Create || !nsOK {
		t.Errorf("%s: the chart does not create the Temporal namespace %q the app uses", ov.temporal, cfg.Temporal.Namespace)
	}
	p := values.Server.Config.Persistence
	def, vis := p.Datastores[p.DefaultStore], p.Datastores[p.VisibilityStore]
	if def.Cassandra == nil || def.Cassandra.Hosts != cassandraSvc || def.Cassandra.Keyspace == cfg.Cassandra.Keyspace {
		t.Errorf("%s: Temporal's default store must be the Cassandra %s in its own keyspace: %+v", ov.temporal, cassandraSvc, def.Cassandra)
	}
	esSvc := fmt.Sprintf("%s-es-http.%s.svc.cluster.local:9200", es.Metadata.Name, es.Metadata.Namespace)
	if vis.Elasticsearch == nil || vis.Elasticsearch.URL.Host != esSvc {
		t.Errorf("%s: Temporal's visibility store must be the Elasticsearch %s: %+v", ov.temporal, esSvc, vis.Elasticsearch)
	}
}

// TestDocsDeploying: the README's Deploying section names the commands and
// versions the files use.
func TestDocsDeploying(t *testing.T) {
	doc := string(read(t, "README.md"))
	_, mods := goModVersions(t)
	for _, want := range []string{
		"docker compose up -d", "--scale worker=3", "kubectl apply -k deploy/k8s/overlays/local",
		"kubectl apply -k deploy/k8s/overlays/production", "http://localhost:8082", "http://localhost:8080",
		"http://localhost:3000", "http://localhost:9090",
		strings.TrimPrefix(mods["go.temporal.io/server"], "v"),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}
