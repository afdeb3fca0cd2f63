package deploy_test

// docker-compose.yml, loaded with compose-go (the loader `docker compose`
// itself uses): the services, the roles and environment of the artifactstate
// services (the workers' Worker Versioning), the start-up order, ports and
// mounts, and the Temporal versions.

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/artifactstate/artifactstate/internal/config"
)

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
			if cfg.GRPC.ListenAddress == "" {
				t.Errorf("service %s: no ARTIFACTSTATE_GRPC_LISTEN_ADDRESS: the gRPC API would be off", name)
			} else if grpcPort := listenPort(t, name, cfg.GRPC.ListenAddress); !publishes(s, grpcPort) {
				t.Errorf("service %s: api serves gRPC on %d but publishes %v", name, grpcPort, s.Ports)
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= cfg.API.ShutdownTimeout {
				t.Errorf("service %s: stop_grace_period must exceed api.shutdownTimeout (%v)", name, cfg.API.ShutdownTimeout)
			}
		case "worker":
			checkProbe(t, name, s, listenPort(t, name, cfg.Admin.ListenAddress))
			checkComposeVersioning(t, name, env, cfg)
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

// checkComposeVersioning: the workers are versions of one Worker
// Deployment, set explicitly rather than by the binary's defaults; with no
// controller, the first build makes itself current and a later one waits
// for `release promote` (README, "With Docker Compose"); the build ID is
// each image's own (its commit), never a fixed one two builds would share.
func checkComposeVersioning(t *testing.T, name string, env map[string]string, cfg config.Config) {
	t.Helper()
	for key, want := range map[string]string{
		"ARTIFACTSTATE_WORKER_VERSIONING_ENABLED":         "true",
		"ARTIFACTSTATE_WORKER_VERSIONING_DEPLOYMENT_NAME": "artifactstate",
		"ARTIFACTSTATE_WORKER_VERSIONING_PROMOTE":         config.PromoteIfNoCurrent,
	} {
		if env[key] != want {
			t.Errorf("service %s: %s=%q, want %q set explicitly", name, key, env[key], want)
		}
	}
	if id, set := env["ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID"]; set {
		t.Errorf("service %s: ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID=%q: every image would run as the same build", name, id)
	}
	v := cfg.Worker.Versioning
	if !v.Enabled || v.DeploymentName != "artifactstate" || v.Promote != config.PromoteIfNoCurrent || v.BuildID != "" {
		t.Errorf("service %s: runs with versioning %+v", name, v)
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
				t.Errorf("service %s mounts %s, which does not exist", name, rel)
			}
		}
	}
	for _, want := range []string{"8082", "8083", "7233", "8080", "9090", "3000"} {
		if _, ok := published[":"+want+"/tcp"]; !ok {
			t.Errorf("host port %s is not published (the README lists it)", want)
		}
	}
}

// TestComposeTemporalVersions: the Temporal server, admin tools and UI images
// are the versions the binary embeds and is tested against (go.mod).
func TestComposeTemporalVersions(t *testing.T) {
	server, ui := temporalVersions(t)
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
		if out, err := exec.Command("sh", "-n", filepath.Join(repoRoot, script)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", script, err, out)
		}
	}
}
