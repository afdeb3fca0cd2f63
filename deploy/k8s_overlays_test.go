package deploy_test

// The kustomize base and overlays, built in-process with kustomize and every
// object decoded strictly into its API type (temporal-worker-controller's
// custom resources against its CRDs, k8s_controller_test.go): the roles and
// their environment, hardening and resources, probes on the endpoints the
// binary serves, autoscalers, disruption budgets, monitors and network
// policies. The workers' pods are the WorkerDeployment's template, with the
// labels the controller adds to each build's pods; their autoscalers and
// disruption budgets are its WorkerResourceTemplates, rendered for a build.

import (
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/artifactstate/artifactstate/internal/config"
)

func TestKubernetesOverlays(t *testing.T) {
	known := knownEnv(t)
	for _, ov := range overlays {
		t.Run(path.Base(ov.dir), func(t *testing.T) {
			objs := kustomizeBuild(t, ov.dir, appForeign...)
			checkOverlay(t, ov, objs, known)
		})
	}
}

func checkOverlay(t *testing.T, ov overlay, objs []k8sObject, known map[string]bool) {
	t.Helper()
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.kind]++
		if o.kind != "Namespace" && o.namespace != appNamespace {
			t.Errorf("%s %s is in namespace %q, want %q", o.kind, o.name, o.namespace, appNamespace)
		}
	}
	for kind, n := range map[string]int{"Deployment": 1, "Service": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1,
		"Job": 1, "CronJob": 1, "ConfigMap": 1, "ServiceMonitor": 1, "PodMonitor": 1, "Namespace": 1, "ServiceAccount": 1,
		"WorkerDeployment": 1, "Connection": 1, "WorkerResourceTemplate": 2} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d", kinds[kind], kind, n)
		}
	}
	if kinds["NetworkPolicy"] < 3 {
		t.Errorf("%d NetworkPolicies", kinds["NetworkPolicy"])
	}
	ctl := decodeController(t, ov.dir, objs)

	for _, cm := range find[*corev1.ConfigMap](objs) {
		for k := range cm.Data {
			if !known[k] {
				t.Errorf("ConfigMap %s: key %s is not an environment variable of the typed config", cm.Name, k)
			}
		}
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
	for _, cj := range find[*batchv1.CronJob](objs) {
		tmpl := cj.Spec.JobTemplate.Spec.Template
		pods = append(pods, podOf{"CronJob", cj.Name, tmpl.Spec, tmpl.Labels})
	}
	// A worker build's pods: the template, the controller's labels and
	// environment (its version).
	injected := map[string]map[string]string{}
	for _, wd := range ctl.deployments {
		pods = append(pods, podOf{"WorkerDeployment", wd.Name, wd.Spec.Template.Spec, versionedPodLabels(wd, exampleBuildID)})
		var conn *connection
		for _, c := range ctl.connections {
			if c.Name == wd.Spec.WorkerOptions.ConnectionRef.Name {
				conn = c
			}
		}
		injected["WorkerDeployment "+wd.Name] = controllerEnv(wd, conn)
	}
	rolePods := map[string]podOf{}
	roleCfg := map[string]config.Config{}
	roleEnv := map[string]map[string]string{}
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
		appEnv := containerAppEnv(t, where, c, objs, ov, known)
		roleEnv[role] = maps.Clone(appEnv)
		checkSecretFiles(t, where, p.spec, appEnv)
		for k, v := range injected[where] {
			appEnv[k] = v
		}
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
			t.Errorf("nothing runs the %s role", role)
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
	if w, ok := rolePods["worker"]; !ok || w.kind != "WorkerDeployment" {
		t.Fatal("no WorkerDeployment runs the worker role (temporal-worker-controller rolls its builds out)")
	}
	if r, ok := rolePods["release"]; !ok || r.kind != "CronJob" {
		t.Fatal("no CronJob runs `release upgrade` (the old builds' idle entities would never move)")
	}
	checkController(t, ov, objs, ctl, roleCfg, roleEnv)

	// The Service exposes the api's port and selects the api pods only.
	svc := byName[*corev1.Service](t, objs, "artifactstate-api")
	api := rolePods["api"]
	if !selects(svc.Spec.Selector, api.labels) || selects(svc.Spec.Selector, rolePods["worker"].labels) {
		t.Errorf("Service %s selector %v must select the api pods only", svc.Name, svc.Spec.Selector)
	}
	// Its ports: http the REST API, grpc the gRPC API, metrics the admin
	// listener (for the ServiceMonitor).
	listens := map[string]string{"http": roleCfg["api"].API.ListenAddress, "grpc": roleCfg["api"].GRPC.ListenAddress,
		"metrics": roleCfg["api"].Admin.ListenAddress}
	if listens["grpc"] == "" {
		t.Error("api: no ARTIFACTSTATE_GRPC_LISTEN_ADDRESS: the gRPC API would be off")
	}
	exposed := map[string]bool{}
	for _, sp := range svc.Spec.Ports {
		addr, ok := listens[sp.Name]
		if !ok || addr == "" {
			t.Errorf("Service port %q is none of http, grpc, metrics", sp.Name)
			continue
		}
		exposed[sp.Name] = true
		if n := resolvePort(t, api.spec.Containers[0], sp.TargetPort); n != listenPort(t, "api", addr) {
			t.Errorf("Service port %s targets container port %d, the api listens on %s", sp.Name, n, addr)
		}
	}
	for _, name := range []string{"http", "grpc"} {
		if !exposed[name] {
			t.Errorf("Service %s exposes no %s port", svc.Name, name)
		}
	}

	// Autoscalers and disruption budgets, each worker build's rendered from
	// the WorkerResourceTemplates.
	deployments := map[string]map[string]string{} // Deployment: its pods' labels
	for _, d := range find[*appsv1.Deployment](objs) {
		deployments[d.Name] = d.Spec.Template.Labels
	}
	for _, wd := range ctl.deployments {
		deployments[versionedDeploymentName(wd, exampleBuildID)] = versionedPodLabels(wd, exampleBuildID)
	}
	withRendered := append(slices.Clone(objs), ctl.rendered...)
	scaled := map[string]bool{}
	for _, h := range find[*autoscalingv2.HorizontalPodAutoscaler](withRendered) {
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
	for _, pdb := range find[*policyv1.PodDisruptionBudget](withRendered) {
		if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: set exactly one of minAvailable and maxUnavailable", pdb.Name)
		}
		if pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() < 1 && pdb.Spec.MaxUnavailable.Type == intstr.Int {
			t.Errorf("PDB %s: maxUnavailable 0 blocks every drain", pdb.Name)
		}
		for name, labels := range deployments {
			if selects(pdb.Spec.Selector.MatchLabels, labels) {
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
		// Every build's, the old ones' while they drain too.
		for _, wd := range ctl.deployments {
			if !selects(pm.Spec.Selector.MatchLabels, versionedPodLabels(wd, "another-build")) {
				t.Errorf("PodMonitor %s selects one build's worker pods only", pm.Name)
			}
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if ep.Port == nil || resolvePort(t, w.spec.Containers[0], intstr.FromString(*ep.Port)) != listenPort(t, "worker", roleCfg["worker"].Admin.ListenAddress) || ep.Path != "/metrics" {
				t.Errorf("PodMonitor %s endpoint %v%s is not the worker's /metrics", pm.Name, ep.Port, ep.Path)
			}
		}
	}

	checkNetworkPolicies(t, objs, rolePods["api"].labels, rolePods["worker"].labels, roleCfg["api"], rolePods["release"].labels)
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
// from the monitoring namespace, egress to DNS, Temporal and Cassandra (for
// the clients, such as the release CronJob, to DNS and Temporal).
func checkNetworkPolicies(t *testing.T, objs []k8sObject, apiLabels, workerLabels map[string]string, cfg config.Config, clients ...map[string]string) {
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
	if cfg.GRPC.ListenAddress != "" {
		if grpcPort := listenPort(t, "api", cfg.GRPC.ListenAddress); !allowsIngress(apiLabels, grpcPort, "") {
			t.Errorf("no NetworkPolicy lets clients reach the api's gRPC port %d", grpcPort)
		}
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
	for _, labels := range clients {
		for _, port := range []int{53, temporalPort} {
			if !allowsEgress(labels, port) {
				t.Errorf("pods %v may not reach port %d (DNS, Temporal)", labels, port)
			}
		}
	}
}
