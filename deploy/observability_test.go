package deploy_test

// Observability files: the compose Prometheus scrape configuration (every
// role on the port it serves), the alert rules, and Grafana's provisioning
// and dashboards.

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	composetypes "github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

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

// TestAlertRules: deploy/prometheus/alerts.yml is a Prometheus rule file
// (decoded strictly: a misspelt field is an error), every rule either alerts
// or records, has an expression, and every alert has a severity and a
// summary. The local scrape config next to it loads these rules.
func TestAlertRules(t *testing.T) {
	type rule struct {
		Alert         string            `yaml:"alert"`
		Record        string            `yaml:"record"`
		Expr          string            `yaml:"expr"`
		For           string            `yaml:"for"`
		KeepFiringFor string            `yaml:"keep_firing_for"`
		Labels        map[string]string `yaml:"labels"`
		Annotations   map[string]string `yaml:"annotations"`
	}
	var rules struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(read(t, "deploy/prometheus/alerts.yml")))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yml is not a Prometheus rule file: %v", err)
	}
	if len(rules.Groups) == 0 {
		t.Fatal("deploy/prometheus/alerts.yml has no rule groups")
	}
	names := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("rule group %q: a group needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			what := g.Name + "/" + r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule sets exactly one of alert and record", what)
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", what)
			}
			if r.Alert == "" {
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			names[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: needs labels.severity and annotations.summary", r.Alert)
			}
		}
	}

	var local struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(read(t, "deploy/prometheus/prometheus.yml"), &local); err != nil {
		t.Fatalf("deploy/prometheus/prometheus.yml: %v", err)
	}
	if !slices.Contains(local.RuleFiles, "alerts.yml") {
		t.Errorf("deploy/prometheus/prometheus.yml loads rule files %q, not the alerts.yml beside it", local.RuleFiles)
	}
}

// TestDashboards: every dashboard is JSON whose data sources file
// provisioning can resolve: the provisioned uid, a data source variable of the
// dashboard, or one of Grafana's built-in sources.
func TestDashboards(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(read(t, "deploy/compose/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasource provisioning: %v", err)
	}
	dsUID := ds.Datasources[0].UID
	dir := filepath.Join(repoRoot, "deploy", "grafana", "dashboards")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		seen++
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
	if seen == 0 {
		t.Errorf("%s holds no dashboard (*.json)", dir)
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
