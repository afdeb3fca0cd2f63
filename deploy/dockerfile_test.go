package deploy_test

// The Dockerfile: its build is the Makefile's `make build`, the runtime image
// is distroless and non-root, the health probe compose uses is in it, and
// .dockerignore keeps what the build compiles.

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

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
	re := regexp.MustCompile(`(?:^|&&\s*|\s)(make build(?:-prod)?(?: [A-Z_]+=\S+)*)(?:\s|$)`)
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
		t.Fatalf("the Dockerfile must build the binary with exactly one `make build-prod` (the CI build of the production binary), found %q", found)
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
	if mk != "make build-prod VERSION=${VERSION} COMMIT=${COMMIT}" {
		t.Errorf("Dockerfile runs %q, want `make build-prod VERSION=${VERSION} COMMIT=${COMMIT}`", mk)
	}
	if !slices.Contains(copies, "--from=build /src/bin/artifactstate-prod /artifactstate") {
		t.Errorf("the runtime stage does not copy the binary `make build-prod` writes (bin/artifactstate-prod): %q", copies)
	}
	// The build info the Makefile bakes in comes from build arguments.
	if _, ok := args["VERSION"]; !ok {
		t.Error("Dockerfile has no ARG VERSION")
	}
	if _, ok := args["COMMIT"]; !ok {
		t.Error("Dockerfile has no ARG COMMIT")
	}
}

// TestDockerBuildIsTheMakefileBuild expands the Dockerfile's `make build-prod`
// with make itself (dry run): it is the static, trimmed build of the
// production binary with the version and commit linked in that CI runs.
func TestDockerBuildIsTheMakefileBuild(t *testing.T) {
	mk := dockerBuildMake(t, parseDockerfile(t))
	argv := strings.Fields(strings.NewReplacer("${VERSION}", "v9.8.7", "${COMMIT}", "abc1234").Replace(mk))
	cmd := exec.Command(argv[0], append([]string{"-n", "--no-print-directory"}, argv[1:]...)...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	cli := "github.com/artifactstate/artifactstate/internal/cli"
	want := `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X ` + cli + `.version=v9.8.7 -X ` + cli + `.commit=abc1234" -o bin/artifactstate-prod ./cmd/artifactstate`
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
	cmd := exec.Command(argv[0], append(argv[1:], "PROD_BIN="+bin)...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v9.8.7") || !strings.Contains(string(out), "abc1234") {
		t.Fatalf("artifactstate version: %v: %s", err, out)
	}
}

// TestDockerHealthProbe: the image carries the health probe compose's
// health checks run (/healthprobe), built from its own dependency-free module
// (deploy/compose/healthprobe). The Dockerfile's build command for it is run
// here as written, into a temporary directory.
func TestDockerHealthProbe(t *testing.T) {
	instrs := parseDockerfile(t)
	re := regexp.MustCompile(`go -C (\S+) build (.*?)-o (\S+) \.`)
	var build []string
	for _, in := range instrs {
		if m := re.FindStringSubmatch(in.args); in.cmd == "RUN" && m != nil {
			build = m
		}
	}
	if build == nil {
		t.Fatal("the Dockerfile does not build the health probe (`go -C deploy/compose/healthprobe build ... -o /src/bin/healthprobe .`)")
	}
	dir, flagsText, out := build[1], build[2], build[3]
	if dir != "deploy/compose/healthprobe" || !exists(dir+"/go.mod") {
		t.Errorf("the Dockerfile builds the health probe in %s, want the module deploy/compose/healthprobe", dir)
	}
	copies := 0
	for _, in := range instrs {
		if in.cmd == "COPY" && in.args == "--from=build "+out+" /healthprobe" {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("the runtime stage does not copy %s to /healthprobe, the path compose's health checks run", out)
	}

	bin := filepath.Join(t.TempDir(), "healthprobe")
	args := append([]string{"-C", filepath.Join(repoRoot, dir), "build"}, strings.Fields(strings.ReplaceAll(flagsText, `"`, ""))...)
	// -ldflags "-s -w" is one argument in the shell.
	for i, a := range args {
		if a == "-ldflags" && i+2 < len(args) && args[i+1] == "-s" && args[i+2] == "-w" {
			args = append(args[:i+1], append([]string{"-s -w"}, args[i+3:]...)...)
			break
		}
	}
	cmd := exec.Command("go", append(args, "-o", bin, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	// The built probe answers for a ready and an unready endpoint.
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if b, err := exec.Command(bin, srv.URL+"/readyz").CombinedOutput(); err != nil {
		t.Errorf("healthprobe against a ready endpoint: %v\n%s", err, b)
	}
	ready.Store(false)
	err := exec.Command(bin, srv.URL+"/readyz").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("healthprobe against an endpoint answering 503: %v, want exit status 1", err)
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
		"internal/readmodel/schema/001_tables.cql", "deploy/compose/healthprobe/main.go", "deploy/compose/healthprobe/go.mod"} {
		if ignored(keep) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", keep)
		}
	}
	for _, drop := range []string{".git/HEAD", "bin/artifactstate", ".artifactstate/temporal.db", "deploy/k8s/base/api.yaml",
		"dev/go.mod"} { // the development module: the image builds the production binary only
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
