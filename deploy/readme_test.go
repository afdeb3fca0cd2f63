package deploy_test

// The README's deployment walkthroughs, run in imagination: every `sh` block
// of the "Deploying" section is parsed with a real shell parser
// (mvdan.cc/sh) and its commands are replayed in order against a model of
// the cluster. A namespace must exist before anything is created in it,
// every shell variable is assigned or documented in the prose before it is
// used, the Helm install of Temporal comes after Cassandra and
// Elasticsearch are ready and after the Secrets its values read, and the app
// comes after Temporal, temporal-worker-controller (its CRDs chart first) and
// its own Secrets. Helm keys the README names or sets are checked against the
// chart's values layout, and every command of the binary it runs through
// `docker compose run` is parsed by the binary's own command line.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	composetypes "github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"mvdan.cc/sh/v3/syntax"
)

// TestDocsDeploying: the README's Deploying section names the commands and
// versions the files use.
func TestDocsDeploying(t *testing.T) {
	doc := string(read(t, "README.md"))
	server, _ := temporalVersions(t)
	for _, want := range []string{
		"docker compose up -d", "--scale worker=3", "kubectl apply -k deploy/k8s/overlays/local",
		"kubectl apply -k deploy/k8s/overlays/production", "http://localhost:8082", "http://localhost:8080",
		"http://localhost:3000", "http://localhost:9090", server, "`temporal` " + chartVersion,
		"temporal-worker-controller " + controllerVersion, "`" + controllerRelease + "` " + controllerChart,
		"`" + controllerCRDRelease + "` " + controllerCRDsChart, "release upgrade", "release promote",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
}

// readmeBlock is one ```sh block of the README.
type readmeBlock struct {
	section []string // the headings above it, outermost first
	line    int      // README line of its first command line
	text    string
	prose   string // the README text between the previous block and this one
}

// readmeBlocks returns the sh blocks under the "Deploying" heading.
func readmeBlocks(t *testing.T, readme []byte) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	var headings []string
	var prose, code strings.Builder
	inCode, start := false, 0
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inCode && trimmed == "```":
			inCode = false
			if len(headings) > 0 && headings[0] == "Deploying" {
				blocks = append(blocks, readmeBlock{section: slices.Clone(headings), line: start, text: code.String(), prose: prose.String()})
			}
			prose.Reset()
		case inCode:
			// Blocks indented under a list item: drop the indentation.
			code.WriteString(strings.TrimLeft(line, " ") + "\n")
		case trimmed == "```sh":
			inCode, start = true, n+1
			code.Reset()
		case strings.HasPrefix(line, "#"):
			level := len(line) - len(strings.TrimLeft(line, "#"))
			if level >= 2 {
				title := strings.TrimSpace(line[level:])
				if level-2 < len(headings) {
					headings = headings[:level-2]
				}
				for len(headings) < level-2 {
					headings = append(headings, "")
				}
				headings = append(headings, title)
			}
			prose.WriteString(line + "\n")
		default:
			prose.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatal("README.md: no sh blocks under \"## Deploying\"")
	}
	return blocks
}

// under selects the blocks whose headings include title.
func under(blocks []readmeBlock, title string) []readmeBlock {
	var out []readmeBlock
	for _, b := range blocks {
		if slices.Contains(b.section, title) {
			out = append(out, b)
		}
	}
	return out
}

// walkthroughs are the command sequences a reader follows, each from a
// fresh cluster (or shell).
func walkthroughs(t *testing.T, blocks []readmeBlock) map[string][]readmeBlock {
	t.Helper()
	local := under(blocks, "Local cluster, step by step (kind or Minikube)")
	production := under(blocks, "Production")
	scaling := under(blocks, "Scaling workers on Kubernetes")
	rollouts := under(blocks, "Worker rollouts: temporal-worker-controller")
	if len(local) == 0 || len(production) == 0 || len(scaling) == 0 || len(rollouts) == 0 {
		t.Fatalf("README.md: the Kubernetes walkthroughs moved: %d local, %d production, %d scaling, %d rollout blocks",
			len(local), len(production), len(scaling), len(rollouts))
	}
	// Production starts with the local walkthrough's cluster and operator
	// steps ("Do steps 1 and 2 of the local walkthrough"), the steps before
	// the one that applies the dependencies.
	prep := slices.IndexFunc(local, func(b readmeBlock) bool { return strings.Contains(b.text, "kubectl apply -k deploy/k8s/dependencies/") })
	if prep < 0 {
		t.Fatal("README.md: the local walkthrough applies no deploy/k8s/dependencies")
	}
	var image []readmeBlock
	for _, b := range blocks {
		if len(b.section) == 1 {
			image = append(image, b)
		}
	}
	return map[string][]readmeBlock{
		"image":      image,
		"compose":    under(blocks, "With Docker Compose"),
		"local":      local,
		"production": append(slices.Clone(local[:prep]), production...),
		// A worker rollout on the production cluster.
		"rollouts": append(append(slices.Clone(local[:prep]), production...), rollouts...),
		"scaling":  append(slices.Clone(local), scaling...),
	}
}

// TestReadmeWalkthroughs replays each walkthrough's commands in order.
func TestReadmeWalkthroughs(t *testing.T) {
	blocks := readmeBlocks(t, read(t, "README.md"))
	for name, steps := range walkthroughs(t, blocks) {
		t.Run(name, func(t *testing.T) {
			for _, p := range replay(t, steps) {
				t.Error(p)
			}
		})
	}
}

// TestReadmeHelmKeys: every Helm values key the README names in backquotes
// is a key of the chart's values at the pinned version.
func TestReadmeHelmKeys(t *testing.T) {
	layout := chartLayout(t)
	re := regexp.MustCompile("`((?:server|web|admintools|schema|shims)\\.[A-Za-z0-9_.-]+)`")
	for i, line := range strings.Split(string(read(t, "README.md")), "\n") {
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			if !chartPathExists(layout, m[1]) {
				t.Errorf("README.md:%d: `%s` is not a key of chart temporal %s's values", i+1, m[1], chartVersion)
			}
		}
	}
}

// TestReferencedFilesExist: the repository paths the deployment files and
// the README name exist (a comment pointing at a removed document misleads).
func TestReferencedFilesExist(t *testing.T) {
	re := regexp.MustCompile(`\b((?:docs|deploy|scripts|internal|cmd)/[A-Za-z0-9_./-]*[A-Za-z0-9_])`)
	files := []string{"README.md", "docker-compose.yml", "Dockerfile", "deploy/README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, _ := filepath.Rel(repoRoot, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for i, line := range strings.Split(string(read(t, f)), "\n") {
			for _, m := range re.FindAllStringSubmatchIndex(line, -1) {
				// A path inside a URL, a module path or a container path is
				// not one of ours.
				if start := m[2]; start > 0 && strings.ContainsAny(line[start-1:start], "/.:@-_") {
					continue
				}
				ref := strings.TrimSuffix(line[m[2]:m[3]], ".")
				if strings.Contains(ref, "...") || strings.ContainsAny(ref, "*{") {
					continue
				}
				if !exists(ref) {
					t.Errorf("%s:%d: names %s, which does not exist", f, i+1, ref)
				}
			}
		}
	}
}

// cluster is what the commands so far have created.
type cluster struct {
	namespaces map[string]bool
	objects    map[string]bool // namespace/kind/name, kind in lower case
	ready      map[string]bool // namespace/kind/name a `kubectl wait` returned for
	releases   map[string]bool // Helm releases
	// The custom resources applied so far, whose readiness installs wait for.
	datacenters, elasticsearches []string // namespace/kind/name
	esByKey                      map[string]elasticsearchCluster
}

// replay runs a walkthrough's commands against the model and returns what
// is out of order.
func replay(t *testing.T, steps []readmeBlock) []string {
	t.Helper()
	c := &cluster{
		namespaces: map[string]bool{"default": true, "kube-system": true, "kube-public": true},
		objects:    map[string]bool{}, ready: map[string]bool{}, releases: map[string]bool{},
		esByKey: map[string]elasticsearchCluster{},
	}
	r := &replayer{t: t, c: c, defined: map[string]bool{}}
	for _, b := range steps {
		r.prose += b.prose
		f, err := syntax.NewParser().Parse(strings.NewReader(b.text), "README.md")
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("README.md:%d: not valid shell: %v", b.line, err))
			continue
		}
		r.line = b.line
		for _, st := range f.Stmts {
			r.stmt(st)
		}
	}
	return r.problems
}

type replayer struct {
	t        *testing.T
	services map[string]composetypes.ServiceConfig // the compose services running the binary, once needed
	c        *cluster
	defined  map[string]bool // shell variables assigned so far
	prose    string          // the README text read so far
	line     int             // first line of the current block
	problems []string
}

func (r *replayer) errorf(pos syntax.Pos, format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf("README.md:%d: ", r.line+int(pos.Line())-1)+fmt.Sprintf(format, args...))
}

func (r *replayer) stmt(st *syntax.Stmt) {
	switch cmd := st.Cmd.(type) {
	case *syntax.BinaryCmd:
		r.stmt(cmd.X)
		r.stmt(cmd.Y)
	case *syntax.CallExpr:
		r.call(cmd)
	}
}

// call runs one simple command: first the command substitutions in it, then
// the variables it expands, then the command itself.
func (r *replayer) call(cmd *syntax.CallExpr) {
	words := slices.Clone(cmd.Args)
	for _, a := range cmd.Assigns {
		if a.Value != nil {
			words = append(words, a.Value)
		}
	}
	for _, w := range words {
		r.expand(w.Parts)
	}
	for _, a := range cmd.Assigns {
		r.defined[a.Name.Value] = true
	}
	if len(cmd.Args) == 0 {
		return
	}
	args := make([]string, len(cmd.Args))
	for i, w := range cmd.Args {
		args[i] = wordText(w.Parts)
	}
	switch args[0] {
	case "kubectl":
		r.kubectl(cmd.Pos(), args[1:])
	case "helm":
		r.helm(cmd.Pos(), args[1:])
	case "docker":
		r.docker(cmd.Pos(), args[1:])
	}
}

// expand checks the variables of a word and runs its command substitutions.
func (r *replayer) expand(parts []syntax.WordPart) {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.ParamExp:
			name := p.Param.Value
			if !shellName.MatchString(name) || slices.Contains(shellBuiltins, name) {
				continue
			}
			if !r.defined[name] && !r.documented(name) {
				r.errorf(p.Pos(), "$%s is used but neither assigned before nor documented in the text before it", name)
			}
		case *syntax.DblQuoted:
			r.expand(p.Parts)
		case *syntax.CmdSubst:
			for _, st := range p.Stmts {
				r.stmt(st)
			}
		}
	}
}

// shellName matches the variables a reader must set (not $1, $@, $?).
var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellBuiltins are set by every shell.
var shellBuiltins = []string{"HOME", "PATH", "PWD", "USER", "SHELL"}

// documented: the README text so far names the variable in backquotes.
func (r *replayer) documented(name string) bool {
	return strings.Contains(r.prose, "`"+name+"`") || strings.Contains(r.prose, "`$"+name+"`")
}

// wordText is a word with its quotes removed; expansions stay as written.
func wordText(parts []syntax.WordPart) string {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			b.WriteString(wordText(p.Parts))
		case *syntax.ParamExp:
			b.WriteString("$" + p.Param.Value)
		default:
			b.WriteString("$(...)")
		}
	}
	return b.String()
}

// flags splits kubectl/helm arguments into positional ones and flag values
// (repeated flags keep every value).
func flags(args []string, withValue ...string) (pos []string, vals map[string][]string) {
	vals = map[string][]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, v, hasV := strings.Cut(a, "=")
		if !hasV && slices.Contains(withValue, name) && i+1 < len(args) {
			v, i = args[i+1], i+1
		}
		vals[name] = append(vals[name], v)
	}
	return pos, vals
}

func first(vals map[string][]string, names ...string) string {
	for _, n := range names {
		if v := vals[n]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

var kindAliases = map[string]string{"svc": "service", "deploy": "deployment", "hpa": "horizontalpodautoscaler", "ns": "namespace",
	"wd": "workerdeployment", "wrt": "workerresourcetemplate", "cj": "cronjob"}

// ourNamespaces are the namespaces whose objects the model knows in full.
var ourNamespaces = []string{appNamespace, "cassandra", "temporal"}

// trackedKinds are the kinds whose existence the model checks in our namespaces.
var trackedKinds = []string{"cassandradatacenter", "elasticsearch", "job", "deployment", "horizontalpodautoscaler", "secret",
	"workerdeployment", "workerresourcetemplate", "cronjob", "connection"}

func (r *replayer) needNamespace(pos syntax.Pos, ns, what string) {
	if !r.c.namespaces[ns] {
		r.errorf(pos, "%s in namespace %q before anything creates that namespace", what, ns)
	}
}

func (r *replayer) needObject(pos syntax.Pos, ns, ref, what string) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok {
		return
	}
	kind = strings.ToLower(kind)
	if a, ok := kindAliases[kind]; ok {
		kind = a
	}
	if !slices.Contains(ourNamespaces, ns) || !slices.Contains(trackedKinds, kind) {
		return
	}
	if !r.c.objects[ns+"/"+kind+"/"+name] && !r.generatedSecretReady(ns, kind, name) {
		r.errorf(pos, "%s %s/%s before anything creates it", what, ns, ref)
	}
}

// generatedSecretReady: ECK creates <cluster>-es-elastic-user once the
// Elasticsearch it belongs to exists; the README may read it after a wait.
func (r *replayer) generatedSecretReady(ns, kind, name string) bool {
	if kind != "secret" {
		return false
	}
	for key, es := range r.c.esByKey {
		if es.Metadata.Namespace == ns && es.elasticUserSecret() == name && r.c.ready[key] {
			return true
		}
	}
	return false
}

func (r *replayer) kubectl(pos syntax.Pos, args []string) {
	p, f := flags(args, "-n", "--namespace", "-k", "-f", "--filename", "-o", "--for", "--timeout", "-p", "--from-literal", "--replicas")
	if len(p) == 0 {
		return
	}
	ns := first(f, "-n", "--namespace")
	switch {
	case p[0] == "create" && len(p) >= 3 && p[1] == "namespace":
		r.c.namespaces[p[2]] = true
	case p[0] == "create" && len(p) >= 4 && p[1] == "secret":
		if ns == "" {
			ns = "default"
		}
		r.needNamespace(pos, ns, "kubectl create secret "+p[3])
		r.c.objects[ns+"/secret/"+p[3]] = true
	case p[0] == "apply" && first(f, "-k") != "":
		r.applyKustomization(pos, first(f, "-k"))
	case p[0] == "apply" && first(f, "-f", "--filename") != "":
		file := first(f, "-f", "--filename")
		if strings.HasPrefix(file, "deploy/") {
			r.applyObjects(pos, file, manifestObjects(r.t, file))
		}
	case p[0] == "wait" && len(p) >= 2:
		r.needNamespace(pos, ns, "kubectl wait")
		r.needObject(pos, ns, p[1], "kubectl wait for")
		kind, name, _ := strings.Cut(p[1], "/")
		r.c.ready[ns+"/"+strings.ToLower(kind)+"/"+name] = true
	case p[0] == "get" && len(p) >= 3:
		r.needNamespace(pos, ns, "kubectl get")
		r.needObject(pos, ns, p[1]+"/"+p[2], "kubectl get")
	case p[0] == "rollout" && len(p) >= 3:
		r.needNamespace(pos, ns, "kubectl rollout")
		for _, ref := range p[2:] {
			r.needObject(pos, ns, ref, "kubectl rollout")
		}
	case p[0] == "port-forward" || p[0] == "patch" || p[0] == "scale" || p[0] == "get" || p[0] == "delete":
		if ns != "" {
			r.needNamespace(pos, ns, "kubectl "+p[0])
		}
		if len(p) >= 2 && p[0] != "get" {
			r.needObject(pos, ns, p[1], "kubectl "+p[0])
		}
		if len(p) >= 3 && p[0] == "patch" {
			r.needObject(pos, ns, p[1]+"/"+p[2], "kubectl patch")
		}
	}
}

// manifestObjects reads the objects of a plain manifest file.
func manifestObjects(t *testing.T, rel string) []k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(read(t, rel)))
	var out []k8sObject
	for {
		var o struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct{ Name, Namespace string }
		}
		if err := dec.Decode(&o); err != nil {
			break
		}
		out = append(out, k8sObject{apiVersion: o.APIVersion, kind: o.Kind, name: o.Metadata.Name, namespace: o.Metadata.Namespace})
	}
	return out
}

// applyObjects records the objects a `kubectl apply` creates: namespaces
// first (kubectl applies them before the objects in them), then the rest,
// each in an existing namespace.
func (r *replayer) applyObjects(pos syntax.Pos, what string, objs []k8sObject) {
	for _, o := range objs {
		if o.kind == "Namespace" {
			r.c.namespaces[o.name] = true
		}
	}
	for _, o := range objs {
		if o.kind == "Namespace" {
			continue
		}
		r.needNamespace(pos, o.namespace, fmt.Sprintf("kubectl apply %s creates %s %s", what, o.kind, o.name))
		r.c.objects[o.namespace+"/"+strings.ToLower(o.kind)+"/"+o.name] = true
	}
}

func (r *replayer) applyKustomization(pos syntax.Pos, dir string) {
	objs := kustomizeBuild(r.t, dir, append([]string{"CassandraDatacenter", "Elasticsearch"}, appForeign...)...)
	// What the objects need before they can start.
	for _, ov := range overlays {
		if ov.dir != dir {
			continue
		}
		for _, s := range ov.outOfBand {
			if !r.c.objects[appNamespace+"/secret/"+s] {
				r.errorf(pos, "kubectl apply -k %s before the Secret %s/%s its pods read exists", dir, appNamespace, s)
			}
		}
		if !r.c.releases["temporal"] {
			r.errorf(pos, "kubectl apply -k %s before Temporal is installed (helm install temporal)", dir)
		}
		if slices.ContainsFunc(objs, func(o k8sObject) bool { return slices.Contains(controllerKinds, o.kind) }) && !r.c.releases[controllerRelease] {
			r.errorf(pos, "kubectl apply -k %s before temporal-worker-controller is installed (its kinds and the webhooks)", dir)
		}
		for _, dc := range r.c.datacenters {
			if !r.c.ready[dc] {
				r.errorf(pos, "kubectl apply -k %s (the migrate Job) without waiting for %s to be ready", dir, dc)
			}
		}
	}
	for _, o := range objs {
		if o.kind != "CassandraDatacenter" && o.kind != "Elasticsearch" {
			continue
		}
		key := o.namespace + "/" + strings.ToLower(o.kind) + "/" + o.name
		if o.kind == "Elasticsearch" {
			var es elasticsearchCluster
			if err := json.Unmarshal(o.raw, &es); err != nil {
				r.t.Fatal(err)
			}
			r.c.esByKey[key] = es
			r.c.elasticsearches = append(r.c.elasticsearches, key)
			continue
		}
		r.c.datacenters = append(r.c.datacenters, key)
		var dc cassandraDatacenter
		if err := json.Unmarshal(o.raw, &dc); err != nil {
			r.t.Fatal(err)
		}
		// cass-operator creates roles from these Secrets: they must exist
		// first (or come with the same kustomization).
		for _, u := range dc.Spec.Users {
			inBuild := slices.ContainsFunc(find[*corev1.Secret](objs), func(s *corev1.Secret) bool {
				return s.Name == u.SecretName && s.Namespace == o.namespace
			})
			if !inBuild && !r.c.objects[o.namespace+"/secret/"+u.SecretName] {
				r.errorf(pos, "kubectl apply -k %s: CassandraDatacenter %s needs the Secret %s/%s, which nothing created before", dir, o.name, o.namespace, u.SecretName)
			}
		}
	}
	r.applyObjects(pos, "-k "+dir, objs)
}

// helm installs a chart. The Temporal chart's schema job runs first: the
// stores must be ready, the values file valid, the Secrets it reads present.
func (r *replayer) helm(pos syntax.Pos, args []string) {
	p, f := flags(args, "-n", "--namespace", "-f", "--values", "--set", "--version", "--repo", "--timeout")
	if len(p) < 3 || (p[0] != "install" && p[0] != "upgrade") {
		return
	}
	release, chart := p[1], p[2]
	ns := first(f, "-n", "--namespace")
	if ns == "" {
		ns = "default"
	}
	if _, create := f["--create-namespace"]; !create {
		r.needNamespace(pos, ns, "helm install "+release)
	}
	r.c.namespaces[ns] = true
	r.c.releases[release] = true
	if release == controllerRelease || release == controllerCRDRelease {
		r.controllerChart(pos, release, chart, ns, f)
		return
	}
	if chart != "temporal" {
		return
	}
	if v := first(f, "--version"); v != chartVersion {
		r.errorf(pos, "helm install %s: chart version %q, the values files target %s", release, v, chartVersion)
	}
	for _, key := range append(slices.Clone(r.c.datacenters), r.c.elasticsearches...) {
		if !r.c.ready[key] {
			r.errorf(pos, "helm install %s without waiting for %s to be ready: the chart's schema job needs it", release, key)
		}
	}
	layout := chartLayout(r.t)
	for _, s := range f["--set"] {
		k, _, _ := strings.Cut(s, "=")
		if !chartPathExists(layout, k) {
			r.errorf(pos, "helm install %s --set %s: not a key of chart temporal %s's values", release, k, chartVersion)
		}
	}
	for _, file := range append(f["-f"], f["--values"]...) {
		if _, err := os.Stat(filepath.Join(repoRoot, file)); err != nil {
			r.errorf(pos, "helm install %s -f %s: %v", release, file, err)
			continue
		}
		var v helmValues
		if err := yaml.Unmarshal(read(r.t, file), &v); err != nil {
			r.t.Fatal(err)
		}
		stores, _ := v.Server.Config.Persistence["datastores"].(map[string]any)
		for store := range stores {
			driver, c := storeConfig(v.Server.Config.Persistence, store)
			if secret, _ := c["existingSecret"].(string); secret != "" &&
				!r.c.objects[ns+"/secret/"+secret] && !r.generatedSecretReady(ns, "secret", secret) {
				r.errorf(pos, "helm install %s: datastores.%s.%s reads the Secret %s/%s, which does not exist yet", release, store, driver, ns, secret)
			}
		}
	}
}

// controllerChart: temporal-worker-controller's two charts at the pinned
// versions, the CRDs first, the controller after cert-manager and with its
// values file, in the namespace that makes its Temporal identity.
func (r *replayer) controllerChart(pos syntax.Pos, release, chart, ns string, f map[string][]string) {
	want := map[string]string{controllerRelease: controllerChart, controllerCRDRelease: controllerCRDsChart}[release]
	if v := first(f, "--version"); v != want {
		r.errorf(pos, "helm install %s: chart version %q, want %s", release, v, want)
	}
	if !strings.HasSuffix(chart, "/"+release) {
		r.errorf(pos, "helm install %s: chart %s, want the chart of that name", release, chart)
	}
	if ns != controllerNamespace {
		r.errorf(pos, "helm install %s in namespace %s, want %s", release, ns, controllerNamespace)
	}
	if release != controllerRelease {
		return
	}
	if !r.c.releases[controllerCRDRelease] {
		r.errorf(pos, "helm install %s before %s: the chart's kinds come from the CRDs chart", release, controllerCRDRelease)
	}
	if !r.c.releases["cert-manager"] {
		r.errorf(pos, "helm install %s before cert-manager: its webhooks' certificate comes from cert-manager", release)
	}
	if files := append(f["-f"], f["--values"]...); !slices.Contains(files, controllerValues) {
		r.errorf(pos, "helm install %s without -f %s", release, controllerValues)
	}
}

// composeRunValueFlags are the `docker compose run` options that take a value.
var composeRunValueFlags = []string{"--name", "-e", "--env", "-u", "--user", "-w", "--workdir", "-l", "--label",
	"-p", "--publish", "-v", "--volume", "--entrypoint", "--env-from-file", "--pull", "--cap-add", "--cap-drop"}

// docker: `docker compose run [options] SERVICE COMMAND...` of an
// artifactstate service runs the binary: its command line must parse.
func (r *replayer) docker(pos syntax.Pos, args []string) {
	if len(args) < 2 || args[0] != "compose" {
		return
	}
	i := slices.Index(args, "run")
	if i < 0 {
		return
	}
	rest := args[i+1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		if slices.Contains(composeRunValueFlags, rest[0]) {
			rest = rest[1:]
		}
		rest = rest[1:]
	}
	if len(rest) < 2 {
		return
	}
	if r.services == nil {
		r.services = ourServices(r.t, loadCompose(r.t))
	}
	if _, ours := r.services[rest[0]]; !ours {
		return
	}
	if _, err := parseCommand(rest[1:]); err != nil {
		r.errorf(pos, "docker compose run %s %s: not a command line of the binary: %v", rest[0], strings.Join(rest[1:], " "), err)
	}
}
