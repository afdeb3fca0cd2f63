package deploy_test

// temporal-worker-controller (README "On Kubernetes"): the workers are a
// WorkerDeployment, the controller's own Connection to Temporal, and per-build
// autoscalers and disruption budgets as WorkerResourceTemplates. kustomize
// keeps these kinds undecoded (appForeign); here each is validated against
// the controller's own CustomResourceDefinition (vendored from v1.8.1 in
// testdata/temporal-worker-controller) as the API server would: the OpenAPI
// schema (github.com/santhosh-tekuri/jsonschema), fields the schema does not
// declare, x-kubernetes-list-type uniqueness and the x-kubernetes-validations
// rules (CEL, evaluated with cel-go); then decoded strictly into mirrors of
// the controller's Go types, whose pod template and rendered resources are
// the Kubernetes API types. What the controller's webhooks refuse is checked
// too, and how the pieces fit the app: the namespace and frontend the workers
// poll, the version names the controller gives them, the rollout, the
// draining CronJob, and the controller's Helm values.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/robfig/cron/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/artifactstate/artifactstate/internal/config"
)

// The controller and its charts (README "Versions targeted").
const (
	controllerVersion    = "v1.8.1"
	controllerChart      = "0.27.1" // temporal-worker-controller, app version 1.8.1
	controllerCRDsChart  = "0.27.0" // temporal-worker-controller-crds, the CRDs of v1.8.1
	controllerRelease    = "temporal-worker-controller"
	controllerCRDRelease = "temporal-worker-controller-crds"
	controllerNamespace  = "temporal-system"
	controllerValues     = "deploy/k8s/dependencies/temporal-worker-controller/values.yaml"
	controllerTestdata   = "deploy/testdata/temporal-worker-controller"
	controllerAPIVersion = "temporal.io/v1alpha1"
)

// controllerKinds are the controller's kinds the overlays use, each with its
// CRD file.
var controllerKinds = []string{"WorkerDeployment", "Connection", "WorkerResourceTemplate"}

var controllerCRDFiles = map[string]string{
	"WorkerDeployment":       "temporal.io_workerdeployments.yaml",
	"Connection":             "temporal.io_connections.yaml",
	"WorkerResourceTemplate": "temporal.io_workerresourcetemplates.yaml",
}

// ---------------------------------------------------------------- mirrors of the controller's Go types

// The controller's API types (api/v1alpha1 at v1.8.1), mirrored: its module
// would bring controller-runtime and another Kubernetes version into this
// one. TestControllerCRDs checks that they declare exactly the fields of
// the CRDs, so a strict decode into them is a strict decode against the CRD.

type workerDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              workerDeploymentSpec `json:"spec"`
}

type workerDeploymentSpec struct {
	Replicas                *int32                 `json:"replicas,omitempty"`
	Template                corev1.PodTemplateSpec `json:"template"`
	MinReadySeconds         int32                  `json:"minReadySeconds,omitempty"`
	ProgressDeadlineSeconds *int32                 `json:"progressDeadlineSeconds,omitempty"`
	Rollout                 rolloutStrategy        `json:"rollout"`
	Sunset                  sunsetStrategy         `json:"sunset"`
	WorkerOptions           workerOptions          `json:"workerOptions"`
}

type rolloutStrategy struct {
	Strategy string `json:"strategy"`
	Gate     *struct {
		WorkflowType string          `json:"workflowType"`
		Input        json.RawMessage `json:"input,omitempty"`
		InputFrom    *struct {
			ConfigMapKeyRef *corev1.ConfigMapKeySelector `json:"configMapKeyRef,omitempty"`
			SecretKeyRef    *corev1.SecretKeySelector    `json:"secretKeyRef,omitempty"`
		} `json:"inputFrom,omitempty"`
	} `json:"gate,omitempty"`
	Steps []struct {
		RampPercentage int             `json:"rampPercentage"`
		PauseDuration  metav1.Duration `json:"pauseDuration"`
	} `json:"steps,omitempty"`
}

type sunsetStrategy struct {
	ScaledownDelay *metav1.Duration `json:"scaledownDelay"`
	DeleteDelay    *metav1.Duration `json:"deleteDelay"`
}

type workerOptions struct {
	ConnectionRef struct {
		Name string `json:"name"`
	} `json:"connectionRef"`
	TemporalNamespace   string `json:"temporalNamespace"`
	UnsafeCustomBuildID string `json:"unsafeCustomBuildID,omitempty"`
}

type connection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		HostPort string `json:"hostPort"`
		TLS      *struct {
			ServerName string `json:"serverName,omitempty"`
		} `json:"tls,omitempty"`
		MutualTLSSecretRef *struct {
			Name string `json:"name"`
		} `json:"mutualTLSSecretRef,omitempty"`
		APIKeySecretRef *corev1.SecretKeySelector `json:"apiKeySecretRef,omitempty"`
	} `json:"spec"`
}

type workerResourceTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		WorkerDeploymentRef         *workerDeploymentRef `json:"workerDeploymentRef,omitempty"`
		TemporalWorkerDeploymentRef *workerDeploymentRef `json:"temporalWorkerDeploymentRef,omitempty"`
		Template                    json.RawMessage      `json:"template"`
	} `json:"spec"`
}

type workerDeploymentRef struct {
	Name string `json:"name"`
}

// ---------------------------------------------------------------- what the controller derives

// The labels the controller adds to each build's pods (and selects them by),
// and the build a rendered resource is checked for.
const (
	buildIDLabel        = "temporal.io/build-id"
	deploymentNameLabel = "temporal.io/deployment-name"
	exampleBuildID      = "0-1-0-0123abcd"
)

// temporalDeploymentName is the Worker Deployment the controller registers
// the builds in: "<namespace>/<name>" (internal/k8s ComputeWorkerDeploymentName).
func temporalDeploymentName(wd *workerDeployment) string {
	return wd.Namespace + "/" + wd.Name
}

// versionedDeploymentName is the Kubernetes Deployment of one build
// (ComputeVersionedDeploymentName: hashed when longer than 47 characters,
// which the example build does not reach).
func versionedDeploymentName(wd *workerDeployment, buildID string) string {
	return strings.ToLower(wd.Name + "-" + buildID)
}

// versionedPodLabels are the labels of a build's pods: the template's and
// the controller's selector labels.
func versionedPodLabels(wd *workerDeployment, buildID string) map[string]string {
	labels := map[string]string{}
	for k, v := range wd.Spec.Template.Labels {
		labels[k] = v
	}
	labels[deploymentNameLabel] = wd.Name
	labels[buildIDLabel] = buildID
	return labels
}

// controllerEnv is what the controller adds to the worker container's
// environment (ApplyControllerPodSpecModifications): the worker takes its
// version from the last two.
func controllerEnv(wd *workerDeployment, conn *connection) map[string]string {
	env := map[string]string{
		"TEMPORAL_NAMESPACE":               wd.Spec.WorkerOptions.TemporalNamespace,
		config.ControllerDeploymentNameEnv: temporalDeploymentName(wd),
		config.ControllerBuildIDEnv:        exampleBuildID,
	}
	if conn != nil {
		env["TEMPORAL_ADDRESS"] = conn.Spec.HostPort
	}
	return env
}

// What the controller mounts into the pods when the Connection has a client
// certificate: a template must not use the name or the path itself.
const (
	controllerTLSVolume    = "temporal-tls"
	controllerTLSMountPath = "/etc/temporal/tls"
)

// ---------------------------------------------------------------- the CRDs

// crd is one of the controller's CustomResourceDefinitions: its served
// version's schema.
type crd struct {
	group, version, kind, scope string
	schema                      map[string]any // openAPIV3Schema
	compiled                    *jsonschema.Schema
}

var loadCRDs = sync.OnceValues(func() (map[string]*crd, error) {
	out := map[string]*crd{}
	for kind, file := range controllerCRDFiles {
		raw, err := readErr(controllerTestdata + "/" + file)
		if err != nil {
			return nil, err
		}
		js, err := sigsyaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		var doc struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Spec       struct {
				Group string `json:"group"`
				Scope string `json:"scope"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name    string `json:"name"`
					Served  bool   `json:"served"`
					Storage bool   `json:"storage"`
					Schema  struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(js, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if doc.APIVersion != "apiextensions.k8s.io/v1" || doc.Kind != "CustomResourceDefinition" || doc.Spec.Names.Kind != kind {
			return nil, fmt.Errorf("%s: %s %s of kind %s, want the CustomResourceDefinition of %s", file, doc.APIVersion, doc.Kind, doc.Spec.Names.Kind, kind)
		}
		for _, v := range doc.Spec.Versions {
			if !v.Served || !v.Storage {
				continue
			}
			schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.Schema.OpenAPIV3Schema))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			c := jsonschema.NewCompiler()
			// Kubernetes' structural schemas are OpenAPI 3.0 schemas, whose
			// keywords are JSON Schema draft 4's; the x-kubernetes-*
			// extensions are checked by checkStructural.
			c.DefaultDraft(jsonschema.Draft4)
			url := "file:///" + file
			if err := c.AddResource(url, schema); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			compiled, err := c.Compile(url)
			if err != nil {
				return nil, fmt.Errorf("%s: the schema does not compile: %w", file, err)
			}
			m, _ := normalizeJSON(schema).(map[string]any)
			out[kind] = &crd{group: doc.Spec.Group, version: v.Name, kind: kind, scope: doc.Spec.Scope, schema: m, compiled: compiled}
		}
		if out[kind] == nil {
			return nil, fmt.Errorf("%s: no version is both served and stored", file)
		}
	}
	return out, nil
})

func controllerCRDs(t *testing.T) map[string]*crd {
	t.Helper()
	crds, err := loadCRDs()
	if err != nil {
		t.Fatal(err)
	}
	return crds
}

// validate reports every way the API server would refuse the object (raw
// JSON), or silently drop part of it.
func (c *crd) validate(raw []byte) []string {
	var problems []string
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []string{err.Error()}
	}
	if err := c.compiled.Validate(inst); err != nil {
		problems = append(problems, fmt.Sprintf("the %s schema rejects it: %v", c.kind, err))
	}
	checkStructural("", c.schema, normalizeJSON(inst), true, func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	})
	return problems
}

// checkStructural walks a value along its structural schema, as the API
// server does beyond the OpenAPI keywords:
//   - a field the schema does not declare (no properties entry, no
//     additionalProperties, no x-kubernetes-preserve-unknown-fields) is
//     pruned, and refused by kubectl's strict field validation;
//   - x-kubernetes-list-type set and map lists hold no duplicates (by their
//     x-kubernetes-list-map-keys);
//   - every x-kubernetes-validations rule (CEL) holds for the value.
//
// The root's metadata is the API server's ObjectMeta (decoded strictly into
// metav1.ObjectMeta instead).
func checkStructural(path string, s map[string]any, v any, root bool, report func(string, ...any)) {
	if v == nil || s == nil {
		return
	}
	if rules, ok := s["x-kubernetes-validations"].([]any); ok {
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			checkRule(orRoot(path), rule, v, report)
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		addl := s["additionalProperties"]
		preserve := s["x-kubernetes-preserve-unknown-fields"] == true
		embedded := s["x-kubernetes-embedded-resource"] == true
		for _, k := range sortedKeys(val) {
			sub := path + "." + k
			if root && k == "metadata" {
				continue
			}
			if ps, ok := props[k].(map[string]any); ok {
				checkStructural(sub, ps, val[k], false, report)
				continue
			}
			if as, ok := addl.(map[string]any); ok {
				checkStructural(sub, as, val[k], false, report)
				continue
			}
			if addl == true || preserve || (embedded && slices.Contains([]string{"apiVersion", "kind", "metadata"}, k)) {
				continue
			}
			report("%s: not a field of the CRD's schema (the API server would drop it; kubectl's strict validation refuses it)", sub)
		}
	case []any:
		items, _ := s["items"].(map[string]any)
		for i, e := range val {
			checkStructural(fmt.Sprintf("%s[%d]", path, i), items, e, false, report)
		}
		seen := map[string]int{}
		for i, e := range val {
			var key any = e
			switch s["x-kubernetes-list-type"] {
			case "set":
			case "map":
				m, _ := e.(map[string]any)
				var tuple []any
				for _, k := range asSlice(s["x-kubernetes-list-map-keys"]) {
					tuple = append(tuple, m[fmt.Sprint(k)])
				}
				key = tuple
			default:
				continue
			}
			b, _ := json.Marshal(key)
			if j, dup := seen[string(b)]; dup {
				report("%s[%d]: duplicates %s[%d] in an x-kubernetes-list-type %v list", path, i, path, j, s["x-kubernetes-list-type"])
			}
			seen[string(b)] = i
		}
	}
}

// celEnv evaluates the CRDs' rules: self is the value the rule is attached
// to (the Kubernetes CEL environment's standard library is CEL's; a rule
// using one of Kubernetes' extension functions fails to compile here and is
// reported, not skipped).
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("self", cel.DynType), cel.CrossTypeNumericComparisons(true))
})

func checkRule(path string, rule map[string]any, self any, report func(string, ...any)) {
	expr, _ := rule["rule"].(string)
	if strings.Contains(expr, "oldSelf") {
		return // a transition rule: evaluated on updates only
	}
	env, err := celEnv()
	if err != nil {
		report("CEL: %v", err)
		return
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		report("%s: the CRD rule %q cannot be evaluated here: %v", path, expr, iss.Err())
		return
	}
	prg, err := env.Program(ast)
	if err != nil {
		report("%s: the CRD rule %q: %v", path, expr, err)
		return
	}
	out, _, err := prg.Eval(map[string]any{"self": self})
	if err != nil {
		report("%s: the CRD rule %q fails: %v", path, expr, err)
		return
	}
	if ok, isBool := out.Value().(bool); !isBool || !ok {
		report("%s: %v (the CRD's rule %q)", path, rule["message"], expr)
	}
}

// normalizeJSON turns json.Number into int64 or float64, as the API
// server's decoder does, so that CEL compares numbers.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func orRoot(path string) string {
	if path == "" {
		return "(object)"
	}
	return strings.TrimPrefix(path, ".")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// ---------------------------------------------------------------- decoding the overlays' custom resources

// controllerObjects are an overlay's custom resources of the controller,
// validated and decoded, and each WorkerResourceTemplate rendered for one
// build (exampleBuildID) the way the controller renders it.
type controllerObjects struct {
	deployments []*workerDeployment
	connections []*connection
	templates   []*workerResourceTemplate
	rendered    []k8sObject
}

func decodeController(t *testing.T, where string, objs []k8sObject) controllerObjects {
	t.Helper()
	crds := controllerCRDs(t)
	var out controllerObjects
	for _, o := range objs {
		c, ok := crds[o.kind]
		if !ok {
			continue
		}
		what := fmt.Sprintf("%s: %s %s", where, o.kind, o.name)
		if o.apiVersion != c.group+"/"+c.version {
			t.Errorf("%s: apiVersion %s, the CRD serves %s/%s", what, o.apiVersion, c.group, c.version)
		}
		if c.scope != "Namespaced" || o.namespace == "" {
			t.Errorf("%s: scope %s, namespace %q", what, c.scope, o.namespace)
		}
		for _, p := range c.validate(o.raw) {
			t.Errorf("%s: %s", what, p)
		}
		var typed any
		switch o.kind {
		case "WorkerDeployment":
			wd := &workerDeployment{}
			out.deployments, typed = append(out.deployments, wd), wd
		case "Connection":
			conn := &connection{}
			out.connections, typed = append(out.connections, conn), conn
		case "WorkerResourceTemplate":
			wrt := &workerResourceTemplate{}
			out.templates, typed = append(out.templates, wrt), wrt
		}
		decodeStrict(t, what, o.raw, typed)
	}
	for _, wrt := range out.templates {
		name := wrt.Spec.WorkerDeploymentRef
		if name == nil {
			t.Errorf("%s: WorkerResourceTemplate %s: no workerDeploymentRef (temporalWorkerDeploymentRef is deprecated)", where, wrt.Name)
			continue
		}
		i := slices.IndexFunc(out.deployments, func(wd *workerDeployment) bool { return wd.Name == name.Name })
		if i < 0 {
			t.Errorf("%s: WorkerResourceTemplate %s refers to WorkerDeployment %s, which the overlay does not have", where, wrt.Name, name.Name)
			continue
		}
		if r, ok := renderTemplate(t, where, wrt, out.deployments[i]); ok {
			out.rendered = append(out.rendered, r)
		}
	}
	return out
}

func decodeStrict(t *testing.T, what string, raw []byte, into any) {
	t.Helper()
	strict, err := kjson.UnmarshalStrict(raw, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
	for _, e := range strict {
		t.Errorf("%s: %v", what, e)
	}
}

// controllerOwnedMetricLabels are metric selector labels the controller
// injects and its webhook refuses to find set.
var controllerOwnedMetricLabels = []string{"temporal_worker_deployment_name", "temporal_worker_build_id", "temporal_namespace"}

// renderTemplate checks a WorkerResourceTemplate's template as the
// controller's webhook does (validateWorkerResourceTemplateSpec), renders it
// for one build (the {} of scaleTargetRef and spec.selector.matchLabels
// filled in) and decodes it strictly into its Kubernetes API type.
func renderTemplate(t *testing.T, where string, wrt *workerResourceTemplate, wd *workerDeployment) (k8sObject, bool) {
	t.Helper()
	what := fmt.Sprintf("%s: WorkerResourceTemplate %s", where, wrt.Name)
	var tmpl map[string]any
	if err := json.Unmarshal(wrt.Spec.Template, &tmpl); err != nil {
		t.Errorf("%s: template: %v", what, err)
		return k8sObject{}, false
	}
	apiVersion, _ := tmpl["apiVersion"].(string)
	kind, _ := tmpl["kind"].(string)
	if apiVersion == "" || kind == "" {
		t.Errorf("%s: the template needs apiVersion and kind", what)
		return k8sObject{}, false
	}
	if meta, ok := tmpl["metadata"].(map[string]any); ok && (meta["name"] != nil || meta["namespace"] != nil) {
		t.Errorf("%s: the template sets metadata.name or namespace, which the controller generates (its webhook refuses them)", what)
	}
	spec, _ := tmpl["spec"].(map[string]any)
	if spec == nil {
		t.Errorf("%s: the template has no spec", what)
		return k8sObject{}, false
	}
	if n, ok := spec["minReplicas"].(float64); ok && n == 0 {
		t.Errorf("%s: minReplicas 0 (the controller's webhook refuses it: a build scaled to zero never scales back up)", what)
	}
	// scaleTargetRef anywhere in spec, and spec.selector.matchLabels: {} is
	// the opt-in to the controller's value; any other value is refused.
	target := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": versionedDeploymentName(wd, exampleBuildID)}
	var injectTarget func(v any) bool
	injectTarget = func(v any) bool {
		found := false
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "scaleTargetRef" {
					if m, ok := e.(map[string]any); !ok || len(m) != 0 {
						t.Errorf("%s: scaleTargetRef %v: must be {} (the controller aims it at each build's Deployment; its webhook refuses a value)", what, e)
					}
					x[k], found = target, true
					continue
				}
				found = injectTarget(e) || found
			}
		case []any:
			for _, e := range x {
				found = injectTarget(e) || found
			}
		}
		return found
	}
	hasTarget := injectTarget(spec)
	hasSelector := false
	if sel, ok := spec["selector"].(map[string]any); ok {
		if ml, present := sel["matchLabels"]; present {
			if m, ok := ml.(map[string]any); !ok || len(m) != 0 {
				t.Errorf("%s: selector.matchLabels %v: must be {} (the controller sets each build's pod labels; its webhook refuses a value)", what, ml)
			}
			sel["matchLabels"] = map[string]any{deploymentNameLabel: wd.Name, buildIDLabel: exampleBuildID}
			hasSelector = true
		}
	}
	for _, m := range asSlice(spec["metrics"]) {
		ext, _ := m.(map[string]any)["external"].(map[string]any)
		metric, _ := ext["metric"].(map[string]any)
		sel, _ := metric["selector"].(map[string]any)
		labels, _ := sel["matchLabels"].(map[string]any)
		for _, k := range controllerOwnedMetricLabels {
			if _, set := labels[k]; set {
				t.Errorf("%s: metric selector sets %s, which the controller injects (its webhook refuses it)", what, k)
			}
		}
	}
	switch kind {
	case "HorizontalPodAutoscaler":
		if !hasTarget {
			t.Errorf("%s: no scaleTargetRef: {}: the autoscalers would scale nothing", what)
		}
	case "PodDisruptionBudget":
		if !hasSelector {
			t.Errorf("%s: no selector.matchLabels: {}: a budget without a selector covers every pod of the namespace", what)
		}
	}
	name := wd.Name + "-" + wrt.Name + "-" + exampleBuildID
	tmpl["metadata"] = map[string]any{"name": name, "namespace": wrt.Namespace}
	raw, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	typed, ok := newTyped(apiVersion, kind)
	if !ok {
		t.Errorf("%s: renders a %s %s, which has no API type to validate against", what, apiVersion, kind)
		return k8sObject{}, false
	}
	decodeStrict(t, what+" (template)", raw, typed)
	return k8sObject{apiVersion: apiVersion, kind: kind, name: name, namespace: wrt.Namespace, raw: raw, obj: typed}, true
}

// ---------------------------------------------------------------- the tests

// TestControllerCRDs: the vendored CRDs are the controller's kinds at
// temporal.io/v1alpha1, and the mirrors declare exactly their fields.
func TestControllerCRDs(t *testing.T) {
	crds := controllerCRDs(t)
	mirrors := map[string]reflect.Type{
		"WorkerDeployment":       reflect.TypeFor[workerDeployment](),
		"Connection":             reflect.TypeFor[connection](),
		"WorkerResourceTemplate": reflect.TypeFor[workerResourceTemplate](),
	}
	for _, kind := range controllerKinds {
		c := crds[kind]
		if c.group+"/"+c.version != controllerAPIVersion {
			t.Errorf("%s: served at %s/%s, the overlays use %s", kind, c.group, c.version, controllerAPIVersion)
		}
		spec, _ := c.schema["properties"].(map[string]any)["spec"].(map[string]any)
		field, _ := mirrors[kind].FieldByName("Spec")
		for _, p := range mirrorDiff(kind+".spec", spec, field.Type) {
			t.Error(p)
		}
	}
	if !strings.Contains(string(read(t, controllerTestdata+"/README.md")), "`"+controllerVersion+"`") {
		t.Errorf("%s/README.md does not name the tag %s the files come from", controllerTestdata, controllerVersion)
	}
}

// mirrorDiff reports the properties of a schema the Go type lacks, and the
// fields of the type the schema lacks, down to the Kubernetes API types.
func mirrorDiff(path string, schema map[string]any, typ reflect.Type) []string {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		if typ == reflect.TypeFor[json.RawMessage]() {
			return nil
		}
		typ = typ.Elem()
		if items, ok := schema["items"].(map[string]any); ok {
			schema = items
		}
	}
	ours := reflect.TypeFor[workerDeployment]().PkgPath()
	if typ.Kind() != reflect.Struct || (typ.PkgPath() != ours && typ.Name() != "") {
		return nil
	}
	props, _ := schema["properties"].(map[string]any)
	var problems []string
	fields := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = f.Type
	}
	for _, name := range sortedKeys(props) {
		ft, ok := fields[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s.%s: in the CRD, not in the Go mirror", path, name))
			continue
		}
		ps, _ := props[name].(map[string]any)
		problems = append(problems, mirrorDiff(path+"."+name, ps, ft)...)
	}
	for _, name := range sortedKeys(fields) {
		if _, ok := props[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s.%s: in the Go mirror, not in the CRD", path, name))
		}
	}
	return problems
}

// TestControllerObjectsRejected: the validation above refuses what the API
// server and the controller's webhook refuse (so that its silence means
// something).
func TestControllerObjectsRejected(t *testing.T) {
	crds := controllerCRDs(t)
	base := map[string]any{
		"apiVersion": controllerAPIVersion, "kind": "WorkerDeployment",
		"metadata": map[string]any{"name": "w", "namespace": "n"},
		"spec": map[string]any{
			"template":      map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "i:1"}}}},
			"rollout":       map[string]any{"strategy": "Progressive", "steps": []any{map[string]any{"rampPercentage": 10, "pauseDuration": "5m"}}},
			"sunset":        map[string]any{"scaledownDelay": "1h", "deleteDelay": "24h"},
			"workerOptions": map[string]any{"connectionRef": map[string]any{"name": "c"}, "temporalNamespace": "n"},
		},
	}
	for name, c := range map[string]struct {
		set  func(spec map[string]any)
		want string
	}{
		"valid":         {func(map[string]any) {}, ""},
		"unknown field": {func(s map[string]any) { s["rollout"].(map[string]any)["stategy"] = "x" }, "spec.rollout.stategy: not a field"},
		"unknown in pod": {func(s map[string]any) {
			s["template"].(map[string]any)["spec"].(map[string]any)["restartPolicyy"] = "x"
		}, "restartPolicyy: not a field"},
		"enum":       {func(s map[string]any) { s["rollout"].(map[string]any)["strategy"] = "Canary" }, "schema rejects"},
		"CEL, steps": {func(s map[string]any) { delete(s["rollout"].(map[string]any), "steps") }, "steps are required for Progressive rollout"},
		"CEL, short pause": {func(s map[string]any) {
			s["rollout"].(map[string]any)["steps"].([]any)[0].(map[string]any)["pauseDuration"] = "10s"
		}, "pause duration must be at least 30s"},
		"ramp above 99": {func(s map[string]any) {
			s["rollout"].(map[string]any)["steps"].([]any)[0].(map[string]any)["rampPercentage"] = 100
		}, "schema rejects"},
		"missing namespace": {func(s map[string]any) { delete(s["workerOptions"].(map[string]any), "temporalNamespace") }, "schema rejects"},
		"duplicate port": {func(s map[string]any) {
			c := s["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["ports"] = []any{map[string]any{"containerPort": 1, "protocol": "TCP"}, map[string]any{"containerPort": 1, "protocol": "TCP"}}
		}, "duplicates"},
	} {
		t.Run(name, func(t *testing.T) {
			var obj map[string]any
			b, _ := json.Marshal(base)
			_ = json.Unmarshal(b, &obj)
			c.set(obj["spec"].(map[string]any))
			raw, _ := json.Marshal(obj)
			problems := strings.Join(crds["WorkerDeployment"].validate(raw), "\n")
			if c.want == "" && problems != "" {
				t.Errorf("a valid WorkerDeployment is refused:\n%s", problems)
			}
			if c.want != "" && !strings.Contains(problems, c.want) {
				t.Errorf("want a problem containing %q, got:\n%s", c.want, problems)
			}
		})
	}
}

// checkController: the overlay's controller resources fit the app. roleCfg
// is each role's configuration, roleEnv its ARTIFACTSTATE_* environment as
// the manifests give it.
func checkController(t *testing.T, ov overlay, objs []k8sObject, ctl controllerObjects, roleCfg map[string]config.Config, roleEnv map[string]map[string]string) {
	t.Helper()
	if len(ctl.deployments) != 1 {
		t.Fatalf("%d WorkerDeployments, want 1 (the workers)", len(ctl.deployments))
	}
	wd := ctl.deployments[0]
	worker := roleCfg["worker"]
	where := "WorkerDeployment " + wd.Name

	// The Temporal side: the controller connects where the workers poll,
	// manages the Worker Deployment they join, and the workers never promote
	// themselves.
	var conn *connection
	for _, c := range ctl.connections {
		if c.Name == wd.Spec.WorkerOptions.ConnectionRef.Name {
			conn = c
		}
	}
	if conn == nil {
		t.Fatalf("%s: connectionRef %q names no Connection of the overlay", where, wd.Spec.WorkerOptions.ConnectionRef.Name)
	}
	checkConnection(t, ov, objs, conn, wd, worker, roleEnv["worker"]["ARTIFACTSTATE_TEMPORAL_TLS_CERT_FILE"])
	if wd.Spec.WorkerOptions.TemporalNamespace != worker.Temporal.Namespace {
		t.Errorf("%s: the controller manages namespace %q, the workers poll %q", where, wd.Spec.WorkerOptions.TemporalNamespace, worker.Temporal.Namespace)
	}
	v := worker.Worker.Versioning
	if !v.Enabled || v.Promote != config.PromoteNever {
		t.Errorf("%s: the workers run with versioning enabled=%v promote=%q, want true and %q: the controller promotes", where, v.Enabled, v.Promote, config.PromoteNever)
	}
	if v.DeploymentName != temporalDeploymentName(wd) || v.BuildID != exampleBuildID {
		t.Errorf("%s: the workers would join version %s:%s, the controller runs them as %s:%s (ARTIFACTSTATE_WORKER_VERSIONING_DEPLOYMENT_NAME or _BUILD_ID overrides the controller's variables)",
			where, v.DeploymentName, v.BuildID, temporalDeploymentName(wd), exampleBuildID)
	}
	for _, cm := range find[*corev1.ConfigMap](objs) {
		for key, want := range map[string]string{"ARTIFACTSTATE_WORKER_VERSIONING_ENABLED": "true", "ARTIFACTSTATE_WORKER_VERSIONING_PROMOTE": config.PromoteNever} {
			if cm.Data[key] != want {
				t.Errorf("ConfigMap %s: %s=%q, want %q", cm.Name, key, cm.Data[key], want)
			}
		}
		for _, key := range []string{"ARTIFACTSTATE_WORKER_VERSIONING_DEPLOYMENT_NAME", "ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID"} {
			if _, set := cm.Data[key]; set {
				t.Errorf("ConfigMap %s sets %s: the workers would ignore the version the controller gives them", cm.Name, key)
			}
		}
	}

	// Builds: the controller's, never one that survives a code change.
	if wd.Spec.WorkerOptions.UnsafeCustomBuildID != "" {
		t.Errorf("%s: unsafeCustomBuildID is set: a new image under the same build ID would replay the histories pinned to the old code", where)
	}
	if wd.Spec.Replicas != nil {
		t.Errorf("%s sets replicas: each build's HorizontalPodAutoscaler owns them", where)
	}
	pod := wd.Spec.Template.Spec
	if pod.RestartPolicy != "" && pod.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("%s: restartPolicy %s (the CRD allows Always only)", where, pod.RestartPolicy)
	}
	if len(pod.Containers) > 0 && pod.Containers[0].Name != "worker" {
		t.Errorf("%s: the first container is %s: the controller derives the build ID from the first container's image", where, pod.Containers[0].Name)
	}
	for _, vol := range pod.Volumes {
		if vol.Name == controllerTLSVolume {
			t.Errorf("%s: volume %s is the controller's (the client certificate of an mTLS Connection)", where, vol.Name)
		}
	}
	for _, c := range pod.Containers {
		for _, m := range c.VolumeMounts {
			if strings.TrimSuffix(m.MountPath, "/") == controllerTLSMountPath {
				t.Errorf("%s: container %s mounts %s, where the controller mounts the Connection's client certificate", where, c.Name, m.MountPath)
			}
		}
		for _, e := range c.Env {
			if _, injected := controllerEnv(wd, conn)[e.Name]; injected || strings.HasPrefix(e.Name, "TEMPORAL_TLS") || e.Name == "TEMPORAL_API_KEY" {
				t.Errorf("%s: container %s sets %s, which the controller sets", where, c.Name, e.Name)
			}
		}
	}
	for _, tsc := range pod.TopologySpreadConstraints {
		if !slices.Contains(tsc.MatchLabelKeys, buildIDLabel) {
			t.Errorf("%s: topology spread on %s counts every build's pods together: add matchLabelKeys [%s] so that each build spreads", where, tsc.TopologyKey, buildIDLabel)
		}
	}

	checkRollout(t, ov, wd)
	checkUpgradeCronJob(t, objs, wd, roleCfg, roleEnv)
}

// checkConnection: the controller reaches the frontend the workers poll,
// with the same TLS (certFile: the workers' client certificate file).
func checkConnection(t *testing.T, ov overlay, objs []k8sObject, conn *connection, wd *workerDeployment, worker config.Config, certFile string) {
	t.Helper()
	where := "Connection " + conn.Name
	if conn.Spec.HostPort != worker.Temporal.Address {
		t.Errorf("%s: hostPort %s, the workers poll %s: the controller would wait for pollers that never come", where, conn.Spec.HostPort, worker.Temporal.Address)
	}
	tls := worker.Temporal.TLS
	serverName := ""
	if conn.Spec.TLS != nil {
		serverName = conn.Spec.TLS.ServerName
	}
	if serverName != tls.ServerName {
		t.Errorf("%s: TLS server name %q, the workers use %q", where, serverName, tls.ServerName)
	}
	if conn.Spec.APIKeySecretRef != nil {
		t.Errorf("%s: an API key; the app authenticates to Temporal with a client certificate (or none)", where)
	}
	mtls := conn.Spec.MutualTLSSecretRef
	switch {
	case !tls.Enabled && mtls != nil:
		t.Errorf("%s: a client certificate, but the workers dial Temporal without TLS", where)
	case tls.Enabled && certFile == "":
		if serverName == "" {
			t.Errorf("%s: no TLS, but the workers dial Temporal with TLS", where)
		}
	case tls.Enabled && mtls == nil:
		t.Errorf("%s: no mutualTLSSecretRef, but the workers present a client certificate (%s)", where, certFile)
	case tls.Enabled:
		// The workers' certificate file is in a Secret volume: the same Secret.
		secret := ""
		for _, m := range wd.Spec.Template.Spec.Containers[0].VolumeMounts {
			if strings.HasPrefix(certFile, strings.TrimSuffix(m.MountPath, "/")+"/") {
				for _, vol := range wd.Spec.Template.Spec.Volumes {
					if vol.Name == m.Name && vol.Secret != nil {
						secret = vol.Secret.SecretName
					}
				}
			}
		}
		if mtls.Name != secret {
			t.Errorf("%s: client certificate from Secret %s, the workers' (%s) from %q", where, mtls.Name, certFile, secret)
		}
		issued := slices.Contains(ov.outOfBand, mtls.Name)
		for _, o := range objs {
			if o.kind != "Certificate" {
				continue
			}
			var cert struct {
				Spec struct {
					SecretName string `json:"secretName"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(o.raw, &cert); err != nil {
				t.Fatal(err)
			}
			issued = issued || cert.Spec.SecretName == mtls.Name
		}
		if !issued {
			t.Errorf("%s: Secret %s is neither issued by a Certificate of the overlay nor expected out of band", where, mtls.Name)
		}
	}
}

// checkRollout: a Progressive rollout whose steps go up and whose first
// pause outlasts the page for failing entity workflow tasks (the local
// overlay may cut over at once); old builds kept while pinned, then scaled
// down before they are deleted.
func checkRollout(t *testing.T, ov overlay, wd *workerDeployment) {
	t.Helper()
	r := wd.Spec.Rollout
	where := "WorkerDeployment " + wd.Name
	switch r.Strategy {
	case "Progressive":
		last := 0
		for i, s := range r.Steps {
			if s.RampPercentage <= last {
				t.Errorf("%s: step %d ramps to %d%% after %d%% (the controller's webhook wants them increasing)", where, i, s.RampPercentage, last)
			}
			last = s.RampPercentage
		}
		if len(r.Steps) > 0 {
			if page := alertWindow(t, "ArtifactStateWorkflowTasksFailing"); r.Steps[0].PauseDuration.Duration < page {
				t.Errorf("%s: the first step (%d%%) lasts %v, less than the %v after which failing entity workflow tasks page (ArtifactStateWorkflowTasksFailing): a bad build would be promoted further unnoticed",
					where, r.Steps[0].RampPercentage, r.Steps[0].PauseDuration.Duration, page)
			}
		}
	case "AllAtOnce":
		if !strings.HasSuffix(ov.dir, "/local") {
			t.Errorf("%s: AllAtOnce outside the local overlay: a bad build would take every new run at once", where)
		}
	default:
		t.Errorf("%s: rollout strategy %q: the controller must ramp and promote (Progressive; AllAtOnce locally)", where, r.Strategy)
	}
	if r.Gate != nil {
		t.Errorf("%s: a gate workflow, which the worker does not register", where)
	}
	if wd.Spec.Sunset.ScaledownDelay == nil || wd.Spec.Sunset.DeleteDelay == nil {
		t.Errorf("%s: set sunset.scaledownDelay and deleteDelay explicitly", where)
		return
	}
	if sd, dd := wd.Spec.Sunset.ScaledownDelay.Duration, wd.Spec.Sunset.DeleteDelay.Duration; sd > dd || sd <= 0 {
		t.Errorf("%s: scaledownDelay %v, deleteDelay %v: a drained build's pods go first (after a positive delay), its Deployment after", where, sd, dd)
	}
}

// alertWindow is how long a condition lasts before the alert fires: its
// `for` plus the window of its rate.
func alertWindow(t *testing.T, alert string) time.Duration {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(read(t, "deploy/prometheus/alerts.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != alert {
				continue
			}
			forD, err := time.ParseDuration(r.For)
			if err != nil {
				t.Fatalf("alert %s: for %q: %v", alert, r.For, err)
			}
			var window time.Duration
			if m := regexp.MustCompile(`\[(\d+[smh])\]`).FindStringSubmatch(r.Expr); m != nil {
				window, _ = time.ParseDuration(m[1])
			}
			return forD + window
		}
	}
	t.Fatalf("deploy/prometheus/alerts.yml has no alert %s", alert)
	return 0
}

// checkUpgradeCronJob: `release upgrade` of the binary, on the controller's
// deployment name, regularly and one at a time.
func checkUpgradeCronJob(t *testing.T, objs []k8sObject, wd *workerDeployment, roleCfg map[string]config.Config, roleEnv map[string]map[string]string) {
	t.Helper()
	cj := byName[*batchv1.CronJob](t, objs, "artifactstate-release-upgrade")
	where := "CronJob " + cj.Name
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("%s: concurrencyPolicy %q, want Forbid: two upgrades would signal the same entities twice", where, cj.Spec.ConcurrencyPolicy)
	}
	sched, err := cron.ParseStandard(cj.Spec.Schedule)
	if err != nil {
		t.Errorf("%s: schedule %q: %v", where, cj.Spec.Schedule, err)
	} else {
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 8 {
			next := sched.Next(at)
			if next.Sub(at) > 15*time.Minute {
				t.Errorf("%s: schedule %q waits %v between runs: idle entities would keep an old build alive longer than a quarter of an hour", where, cj.Spec.Schedule, next.Sub(at))
				break
			}
			at = next
		}
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("%s: restartPolicy %q", where, pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", where, len(pod.Containers))
	}
	args := pod.Containers[0].Args
	cmd, err := parseCommand(args)
	if err != nil {
		t.Fatalf("%s: args %q are not a command line of the binary: %v", where, args, err)
	}
	if cmd.CommandPath() != "artifactstate release upgrade" {
		t.Errorf("%s: runs %q, want artifactstate release upgrade", where, cmd.CommandPath())
	}
	deployment, _ := cmd.Flags().GetString("deployment")
	if !cmd.Flags().Changed("deployment") || deployment != temporalDeploymentName(wd) {
		t.Errorf("%s: --deployment %q, the controller's Worker Deployment is %s (<namespace>/<WorkerDeployment name>)", where, deployment, temporalDeploymentName(wd))
	}
	if rate, _ := cmd.Flags().GetFloat64("rate"); rate <= 0 || rate > 100 {
		t.Errorf("%s: --rate %v: want a bounded, positive rate", where, rate)
	}
	if dry, _ := cmd.Flags().GetBool("dry-run"); dry {
		t.Errorf("%s: --dry-run moves nothing", where)
	}
	if f, _ := cmd.Flags().GetString("cursor-file"); f != "" {
		t.Errorf("%s: --cursor-file %s: each run is a new pod, the file would not survive it (and an upgrade resumes anyway: moved entities drop out of the listing)", where, f)
	}
	cfg := roleCfg["release"]
	if cfg.Temporal.Address != roleCfg["worker"].Temporal.Address || cfg.Temporal.Namespace != roleCfg["worker"].Temporal.Namespace {
		t.Errorf("%s: talks to %s/%s, the workers to %s/%s", where, cfg.Temporal.Address, cfg.Temporal.Namespace,
			roleCfg["worker"].Temporal.Address, roleCfg["worker"].Temporal.Namespace)
	}
	const keys = "ARTIFACTSTATE_TEMPORAL_ENCRYPTION_KEYS_FILE"
	if roleEnv["release"][keys] != roleEnv["worker"][keys] {
		t.Errorf("%s: payload keys %q, the workers' %q: the entities must read the upgrade signal", where, roleEnv["release"][keys], roleEnv["worker"][keys])
	}
}

// TestControllerHelmValues: the controller's Helm values are keys of the
// chart (0.27.1) and pass its values schema, watch the app's namespace, and
// allow every kind the WorkerResourceTemplates render.
func TestControllerHelmValues(t *testing.T) {
	var layout, values yaml.Node
	if err := yaml.Unmarshal(read(t, controllerTestdata+"/chart-values.yaml"), &layout); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(read(t, controllerValues), &values); err != nil {
		t.Fatalf("%s: %v", controllerValues, err)
	}
	for _, p := range chartValueKeys("", layout.Content[0], values.Content[0]) {
		t.Errorf("%s: %s", controllerValues, p)
	}

	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(yamlJSON(t, read(t, controllerValues))))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(read(t, controllerTestdata+"/chart-values.schema.json")))
	if err != nil {
		t.Fatal(err)
	}
	// Its $schema names draft 7 at an https URL, which the compiler does
	// not know by that spelling.
	if m, ok := schema.(map[string]any); ok {
		delete(m, "$schema")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource("file:///values.schema.json", schema); err != nil {
		t.Fatal(err)
	}
	compiled, err := c.Compile("file:///values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := compiled.Validate(inst); err != nil {
		t.Errorf("%s: the chart's values.schema.json refuses it (helm install would): %v", controllerValues, err)
	}

	var v struct {
		RBAC struct {
			RestrictWatchNamespaces []string `yaml:"restrictWatchNamespaces"`
		} `yaml:"rbac"`
		WorkerResourceTemplate struct {
			AllowedResources []struct {
				Kinds     []string `yaml:"kinds"`
				APIGroups []string `yaml:"apiGroups"`
				Resources []string `yaml:"resources"`
			} `yaml:"allowedResources"`
		} `yaml:"workerResourceTemplate"`
		CertManager struct {
			Install *bool `yaml:"install"`
			Enabled *bool `yaml:"enabled"`
		} `yaml:"certmanager"`
	}
	if err := yaml.Unmarshal(read(t, controllerValues), &v); err != nil {
		t.Fatal(err)
	}
	if w := v.RBAC.RestrictWatchNamespaces; len(w) > 0 && !slices.Contains(w, appNamespace) {
		t.Errorf("%s: the controller watches %v only, not %s where the WorkerDeployment is", controllerValues, w, appNamespace)
	}
	if v.CertManager.Install == nil || *v.CertManager.Install || (v.CertManager.Enabled != nil && !*v.CertManager.Enabled) {
		t.Errorf("%s: certmanager: want install false (cert-manager is installed before, README step 2) and enabled (the webhooks' certificate)", controllerValues)
	}
	allowed := map[string]string{} // kind -> API group
	for _, r := range v.WorkerResourceTemplate.AllowedResources {
		if len(r.APIGroups) == 0 || len(r.Resources) == 0 {
			t.Errorf("%s: allowedResources %v: the controller's RBAC needs apiGroups and resources", controllerValues, r.Kinds)
		}
		for _, k := range r.Kinds {
			allowed[strings.ToLower(k)] = strings.Join(r.APIGroups, ",")
		}
	}
	for _, ov := range overlays {
		ctl := decodeController(t, ov.dir, kustomizeBuild(t, ov.dir, appForeign...))
		for _, r := range ctl.rendered {
			group, _, _ := strings.Cut(r.apiVersion, "/")
			if groups, ok := allowed[strings.ToLower(r.kind)]; !ok || !slices.Contains(strings.Split(groups, ","), group) {
				t.Errorf("%s: a WorkerResourceTemplate renders %s (%s), which workerResourceTemplate.allowedResources does not allow: the controller's webhook refuses it", ov.dir, r.kind, r.apiVersion)
			}
		}
	}
}

// chartValueKeys reports the keys of values that the chart's default values
// do not have. Below a default that is an empty map or a list, and for a
// default of null, any value goes (the chart passes it through).
func chartValueKeys(prefix string, layout, values *yaml.Node) []string {
	if layout.Kind != yaml.MappingNode || len(layout.Content) == 0 {
		return nil
	}
	if values.Kind != yaml.MappingNode {
		return []string{fmt.Sprintf("%s: a block of keys in the chart", strings.TrimPrefix(prefix, "."))}
	}
	var problems []string
	for i := 0; i+1 < len(values.Content); i += 2 {
		key := values.Content[i].Value
		sub := mappingValue(layout, key)
		if sub == nil {
			problems = append(problems, fmt.Sprintf("%s: not a key of chart %s %s's values: Helm ignores it", strings.TrimPrefix(prefix+"."+key, "."), controllerRelease, controllerChart))
			continue
		}
		problems = append(problems, chartValueKeys(prefix+"."+key, sub, values.Content[i+1])...)
	}
	return problems
}

func yamlJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := sigsyaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// readErr is read for code without a *testing.T.
func readErr(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
}
