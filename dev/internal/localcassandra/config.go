package localcassandra

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Options configures Fetch and Start. The zero value is usable for Fetch;
// Start needs RunDir.
type Options struct {
	// Version is the Cassandra 5.0.x release; default DefaultVersion.
	Version string
	// CacheDir is the cache root; default $ARTIFACTSTATE_CASSANDRA_CACHE, else
	// ${XDG_CACHE_HOME:-$HOME/.cache}/artifactstate/cassandra.
	CacheDir string
	// RunDir holds data, logs, generated config and the state file.
	RunDir string
	// JavaHome must be a Java 17 JDK; default: $JAVA_HOME if it is 17, else
	// /usr/lib/jvm/java-17-openjdk-amd64.
	JavaHome string
	// HeapMin and HeapMax are JVM sizes such as "512m"; default 512m / 768m.
	// HeapMin is lowered to HeapMax when larger.
	HeapMin, HeapMax string
	// StartTimeout bounds the wait for the first successful CQL query;
	// default 180s.
	StartTimeout time.Duration
	// Logger receives progress messages; default discards them.
	Logger *slog.Logger
	// NativePort (CQL) and StoragePort, when not zero, are the ports to use.
	// Otherwise the first start of a run dir picks free ones, and later
	// starts reuse them (see address).
	NativePort, StoragePort int

	// The fields below make the node one member of a ring (see
	// internal/localcluster); left empty, the node is a ring of one.

	// Host is the loopback address the node listens on for CQL and
	// internode traffic; default 127.0.0.1. Every 127.x.y.z is loopback on
	// Linux, so several nodes can share the ports on their own addresses.
	Host string
	// Seeds are the host:storage_port of the ring's seed nodes; default the
	// node itself. A node that is one of its seeds never bootstraps
	// (streams data from the others) when it first starts.
	Seeds []string
	// InitialToken is the node's token on the Murmur3 ring (one token per
	// node); default "0". Every node of a ring needs its own.
	InitialToken string
}

const (
	defaultHeapMin      = "512m"
	defaultHeapMax      = "768m"
	defaultStartTimeout = 180 * time.Second
	defaultJava17       = "/usr/lib/jvm/java-17-openjdk-amd64"
	loopback            = "127.0.0.1"
	clusterName         = "artifactstate-local" // persisted in system.local; must never change
)

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.HeapMin == "" {
		o.HeapMin = defaultHeapMin
	}
	if o.HeapMax == "" {
		o.HeapMax = defaultHeapMax
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = defaultStartTimeout
	}
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	if o.Host == "" {
		o.Host = loopback
	}
	if o.InitialToken == "" {
		o.InitialToken = "0"
	}
	return o
}

// checkRing validates the ring fields: a loopback host, host:port seeds,
// an integer token.
func (o Options) checkRing() error {
	if ip := net.ParseIP(o.Host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return fmt.Errorf("localcassandra: Host %q is not an IPv4 loopback address (127.x.y.z)", o.Host)
	}
	for _, s := range o.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("localcassandra: seed %q is not host:port: %w", s, err)
		}
	}
	if _, err := strconv.ParseInt(o.InitialToken, 10, 64); err != nil {
		return fmt.Errorf("localcassandra: InitialToken %q is not a 64-bit integer", o.InitialToken)
	}
	return nil
}

func (o Options) cacheRoot() (string, error) {
	if o.CacheDir != "" {
		return filepath.Abs(o.CacheDir)
	}
	if env := os.Getenv(CacheEnv); env != "" {
		return filepath.Abs(env)
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("localcassandra: no cache dir: set %s or HOME: %w", CacheEnv, err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "artifactstate", "cassandra"), nil
}

// heapFlags validates the heap sizes and returns -Xms/-Xmx flags.
func heapFlags(minSize, maxSize string) ([]string, error) {
	lo, err := parseSize(minSize)
	if err != nil {
		return nil, err
	}
	hi, err := parseSize(maxSize)
	if err != nil {
		return nil, err
	}
	if lo > hi {
		minSize = maxSize
	}
	return []string{"-Xms" + minSize, "-Xmx" + maxSize}, nil
}

// parseSize parses a JVM memory size ("768m", "1g", "524288k") into bytes.
func parseSize(s string) (int64, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("localcassandra: bad heap size %q (want e.g. 768m or 1g)", s)
	}
	mult := map[byte]int64{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}[s[len(s)-1]|0x20]
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if mult == 0 || err != nil || n <= 0 {
		return 0, fmt.Errorf("localcassandra: bad heap size %q (want e.g. 768m or 1g)", s)
	}
	if n*mult < 256<<20 {
		return 0, fmt.Errorf("localcassandra: heap size %q is too small for Cassandra (min 256m)", s)
	}
	return n * mult, nil
}

// findJava17 returns a Java 17 home. Cassandra 5.0 runs on Java 11 and 17
// only; newer JDKs fail (System.setSecurityManager was removed).
func findJava17(explicit string) (string, error) {
	if explicit != "" {
		if v := javaVersion(explicit); !strings.HasPrefix(v, "17") {
			return "", fmt.Errorf("localcassandra: JavaHome %s is Java %q, Cassandra 5.0 needs Java 17", explicit, v)
		}
		return explicit, nil
	}
	if jh := os.Getenv("JAVA_HOME"); jh != "" && strings.HasPrefix(javaVersion(jh), "17") {
		return jh, nil
	}
	if strings.HasPrefix(javaVersion(defaultJava17), "17") {
		return defaultJava17, nil
	}
	return "", fmt.Errorf("localcassandra: no Java 17 found (JAVA_HOME=%q is not 17 and %s is missing); "+
		"install openjdk-17 or point JAVA_HOME at a Java 17 JDK — Cassandra 5.0 cannot run on newer Java",
		os.Getenv("JAVA_HOME"), defaultJava17)
}

// javaVersion reads JAVA_VERSION from <home>/release; "" if unknown or
// bin/java is missing.
func javaVersion(home string) string {
	if _, err := os.Stat(filepath.Join(home, "bin", "java")); err != nil {
		return ""
	}
	f, err := os.Open(filepath.Join(home, "release"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "JAVA_VERSION="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// layout names every path inside a run dir.
type layout struct{ dir string }

func (l layout) yaml() string     { return filepath.Join(l.dir, "conf", "cassandra.yaml") }
func (l layout) logback() string  { return filepath.Join(l.dir, "conf", "logback.xml") }
func (l layout) data() string     { return filepath.Join(l.dir, "data") }
func (l layout) logs() string     { return filepath.Join(l.dir, "logs") }
func (l layout) logFile() string  { return filepath.Join(l.dir, "logs", "cassandra.log") }
func (l layout) triggers() string { return filepath.Join(l.dir, "triggers") }
func (l layout) tmp() string      { return filepath.Join(l.dir, "tmp") }
func (l layout) pidFile() string  { return filepath.Join(l.dir, "cassandra.pid") }
func (l layout) state() string    { return filepath.Join(l.dir, "state.json") }
func (l layout) address() string  { return filepath.Join(l.dir, "address.json") }
func (l layout) lock() string     { return filepath.Join(l.dir, ".lock") }
func (l layout) yamlURL() string  { return "file://" + l.yaml() }
func (l layout) mkdirs() []string {
	return []string{filepath.Dir(l.yaml()), l.data(), l.logs(), l.tmp(), l.triggers()}
}

// yamlParams feeds yamlTmpl.
type yamlParams struct {
	ClusterName             string
	Host                    string
	Seeds                   string
	InitialToken            string
	Ring                    bool // one of several nodes
	NativePort, StoragePort int
	DataDir                 string
	CommitLogDir, HintsDir  string
	SavedCachesDir, CDCDir  string
}

// yamlTmpl is a minimal cassandra.yaml for a dev/test node. Cassandra 5.0
// rejects unknown keys, so every key here is a real 5.0 setting. Strings are
// quoted with the q func (JSON quoting is valid YAML).
var yamlTmpl = template.Must(template.New("yaml").Funcs(template.FuncMap{"q": quote}).Parse(`# Generated by internal/localcassandra; rewritten on every start.
cluster_name: {{q .ClusterName}}
num_tokens: 1
initial_token: {{.InitialToken}}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: {{q .Seeds}}
listen_address: {{.Host}}
rpc_address: {{.Host}}
storage_port: {{.StoragePort}}
native_transport_port: {{.NativePort}}
start_native_transport: true
data_file_directories:
  - {{q .DataDir}}
commitlog_directory: {{q .CommitLogDir}}
hints_directory: {{q .HintsDir}}
saved_caches_directory: {{q .SavedCachesDir}}
cdc_raw_directory: {{q .CDCDir}}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
# Dev/test tuning: two cores, small heap.
auto_snapshot: false
{{- if .Ring}}
# A ring: a node back from a crash gets the writes it missed.
hinted_handoff_enabled: true
max_hint_window: 1h
{{- else}}
hinted_handoff_enabled: false
{{- end}}
concurrent_compactors: 1
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
key_cache_size: 8MiB
counter_cache_size: 4MiB
file_cache_size: 32MiB
networking_cache_size: 16MiB
dynamic_snitch: false
`))

func quote(s string) string {
	b, _ := json.Marshal(s) // cannot fail for a string
	return string(b)
}

// yamlFor renders cassandra.yaml; no seeds means the node is its own seed.
func yamlFor(l layout, host string, nativePort, storagePort int, seeds []string, token string) (string, error) {
	self := net.JoinHostPort(host, strconv.Itoa(storagePort))
	if len(seeds) == 0 {
		seeds = []string{self}
	}
	if token == "" {
		token = "0"
	}
	var sb strings.Builder
	err := yamlTmpl.Execute(&sb, yamlParams{
		ClusterName:    clusterName,
		Host:           host,
		Seeds:          strings.Join(seeds, ","),
		InitialToken:   token,
		Ring:           len(seeds) > 1 || seeds[0] != self,
		NativePort:     nativePort,
		StoragePort:    storagePort,
		DataDir:        filepath.Join(l.data(), "data"),
		CommitLogDir:   filepath.Join(l.data(), "commitlog"),
		HintsDir:       filepath.Join(l.data(), "hints"),
		SavedCachesDir: filepath.Join(l.data(), "saved_caches"),
		CDCDir:         filepath.Join(l.data(), "cdc_raw"),
	})
	return sb.String(), err
}

// logbackXML sends INFO and above to stdout, which Start redirects to
// logs/cassandra.log (the default config logs DEBUG to the console).
const logbackXML = `<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
`

// jvmArgs returns the java command line (without the java binary).
func jvmArgs(l layout, libDir string, heap []string) ([]string, error) {
	jamm, _ := filepath.Glob(filepath.Join(libDir, "jamm-*.jar"))
	if len(jamm) != 1 {
		return nil, fmt.Errorf("localcassandra: want exactly one jamm jar in %s, found %d", libDir, len(jamm))
	}
	args := append([]string{}, heap...)
	args = append(args,
		"-XX:+ExitOnOutOfMemoryError",
		"-javaagent:"+jamm[0], // Cassandra's memory sizing needs the jamm agent
		"-Djdk.attach.allowAttachSelf=true",
		"-Dcassandra-foreground=yes", // otherwise stdout/stderr are closed
		"-Dcassandra.config="+l.yamlURL(),
		"-Dcassandra.storagedir="+l.data(),
		"-Dcassandra.logdir="+l.logs(),
		"-Dcassandra.triggers_dir="+l.triggers(),
		"-Dlogback.configurationFile="+l.logback(),
		"-Dchronicle.analytics.disable=true",
		"-Djava.net.preferIPv4Stack=true",
		"-Djava.io.tmpdir="+l.tmp(),
		"-Djna.tmpdir="+l.tmp(),
		// A single node has nothing to wait for; a fresh local ring's nodes
		// are all seeds, which gossip at once.
		"-Dcassandra.skip_wait_for_gossip_to_settle=0",
		"-Dcassandra.superuser_setup_delay_ms=0",
	)
	// From Cassandra's conf/jvm17-server.options.
	for _, m := range []string{
		"java.base/jdk.internal.misc", "java.management.rmi/com.sun.jmx.remote.internal.rmi",
		"java.management/com.sun.jmx.remote.security", "java.rmi/sun.rmi.registry",
		"java.rmi/sun.rmi.server", "java.sql/java.sql", "java.base/java.lang.ref",
		"jdk.unsupported/sun.misc",
	} {
		args = append(args, "--add-exports", m+"=ALL-UNNAMED")
	}
	for _, m := range []string{
		"java.base/java.lang.module", "java.base/jdk.internal.loader", "java.base/jdk.internal.ref",
		"java.base/jdk.internal.reflect", "java.base/jdk.internal.math", "java.base/jdk.internal.module",
		"java.base/jdk.internal.util.jar", "jdk.management/com.sun.management.internal",
		"java.base/sun.nio.ch", "java.base/java.io", "java.base/java.lang.reflect",
		"java.base/java.lang", "java.base/java.util", "java.base/java.nio",
	} {
		args = append(args, "--add-opens", m+"=ALL-UNNAMED")
	}
	args = append(args, "-cp", filepath.Join(libDir, "*"), mainClass)
	return args, nil
}

const mainClass = "org.apache.cassandra.service.CassandraDaemon"

// freePorts returns n distinct free TCP ports on host. All listeners stay open
// until every port is chosen, so the kernel cannot hand out one port twice.
func freePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("localcassandra: pick free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// address is the run dir's ports, kept in address.json across stops (unlike
// state): a restarted node comes back on the address its clients were given,
// as a restarted Cassandra server does.
type address struct {
	NativePort  int `json:"native_port"`
	StoragePort int `json:"storage_port"`
}

// chooseAddress returns the ports of the next start: those of opts when set,
// else the ones the run dir used before, else free ones. A remembered port
// that another process now holds is an error rather than a silent move, since
// clients configured with the old address would never find the node.
func chooseAddress(l layout, opts Options) (address, error) {
	a, err := readAddress(l)
	if err != nil {
		return address{}, err
	}
	remembered := a
	host := opts.Host
	if host == "" {
		host = loopback
	}
	if opts.NativePort != 0 {
		a.NativePort = opts.NativePort
	}
	if opts.StoragePort != 0 {
		a.StoragePort = opts.StoragePort
	}
	for _, p := range []struct {
		name string
		port int
	}{{"CQL", a.NativePort}, {"storage", a.StoragePort}} {
		if p.port == 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.port)))
		if err != nil {
			hint := ""
			if p.port == remembered.NativePort || p.port == remembered.StoragePort {
				hint = fmt.Sprintf(" (this run dir's address, kept in %s: free the port, or delete that file to pick new ports)", l.address())
			}
			return address{}, fmt.Errorf("localcassandra: %s port %d is in use%s: %w", p.name, p.port, hint, err)
		}
		ln.Close()
	}
	if a.NativePort == 0 || a.StoragePort == 0 {
		free, err := freePorts(host, 3) // three: one may equal the port already chosen
		if err != nil {
			return address{}, err
		}
		for _, p := range free {
			switch {
			case p == a.NativePort || p == a.StoragePort:
			case a.NativePort == 0:
				a.NativePort = p
			case a.StoragePort == 0:
				a.StoragePort = p
			}
		}
	}
	if a.NativePort == a.StoragePort {
		return address{}, fmt.Errorf("localcassandra: CQL and storage port are both %d", a.NativePort)
	}
	return a, nil
}

// readAddress returns the remembered address; zero ports if there is none.
func readAddress(l layout) (address, error) {
	var a address
	b, err := os.ReadFile(l.address())
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("localcassandra: read address: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("localcassandra: parse %s (delete it to pick new ports): %w", l.address(), err)
	}
	return a, nil
}

func writeAddress(l layout, a address) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.address(), append(b, '\n')); err != nil {
		return fmt.Errorf("localcassandra: write address: %w", err)
	}
	return nil
}

// state is persisted as state.json in the run dir.
type state struct {
	PID         int       `json:"pid"`
	Host        string    `json:"host"`
	NativePort  int       `json:"native_port"`
	StoragePort int       `json:"storage_port"`
	Version     string    `json:"version"`
	StartedAt   time.Time `json:"started_at"`
}

// errNoState means the run dir has no state file (never started or stopped).
var errNoState = errors.New("no state file")

func writeState(l layout, s state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.state(), append(b, '\n')); err != nil {
		return fmt.Errorf("localcassandra: write state: %w", err)
	}
	if err := writeFileAtomic(l.pidFile(), []byte(strconv.Itoa(s.PID)+"\n")); err != nil {
		return fmt.Errorf("localcassandra: write pid file: %w", err)
	}
	return nil
}

func readState(l layout) (state, error) {
	var s state
	b, err := os.ReadFile(l.state())
	if errors.Is(err, os.ErrNotExist) {
		return s, errNoState
	}
	if err != nil {
		return s, fmt.Errorf("localcassandra: read state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("localcassandra: parse %s: %w", l.state(), err)
	}
	if s.PID <= 0 || s.NativePort <= 0 {
		return s, fmt.Errorf("localcassandra: %s has no pid or port", l.state())
	}
	return s, nil
}

func removeState(l layout) error {
	for _, p := range []string{l.state(), l.pidFile()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("localcassandra: remove %s: %w", p, err)
		}
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
