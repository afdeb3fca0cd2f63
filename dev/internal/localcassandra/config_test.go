package localcassandra

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestYAMLHasRequiredKeys(t *testing.T) {
	l := layout{"/run/dir with space"}
	y, err := yamlFor(l, "127.0.0.1", 19042, 17000, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cluster_name: \"artifactstate-local\"\n",
		"num_tokens: 1\n",
		"initial_token: 0\n",
		"partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n",
		"endpoint_snitch: SimpleSnitch\n",
		"class_name: org.apache.cassandra.locator.SimpleSeedProvider\n",
		"- seeds: \"127.0.0.1:17000\"\n", // must name this node or it tries to bootstrap
		"listen_address: 127.0.0.1\n",
		"rpc_address: 127.0.0.1\n",
		"storage_port: 17000\n",
		"native_transport_port: 19042\n",
		"commitlog_sync: periodic\n",
		"commitlog_sync_period: 10000ms\n",
		"  - \"/run/dir with space/data/data\"\n",
		"commitlog_directory: \"/run/dir with space/data/commitlog\"\n",
		"hints_directory: ",
		"saved_caches_directory: ",
		"auto_snapshot: false\n",
		"concurrent_compactors: 1\n",
		"hinted_handoff_enabled: false\n", // a single node has nobody to keep hints for
	} {
		if !strings.Contains(y, want) {
			t.Errorf("cassandra.yaml lacks %q:\n%s", want, y)
		}
	}
}

func TestYAMLOfRingMember(t *testing.T) {
	y, err := yamlFor(layout{"/r"}, "127.0.0.2", 19042, 17000,
		[]string{"127.0.0.1:17000", "127.0.0.2:17000", "127.0.0.3:17000"}, "-3074457345618258603")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"initial_token: -3074457345618258603\n",
		"- seeds: \"127.0.0.1:17000,127.0.0.2:17000,127.0.0.3:17000\"\n",
		"listen_address: 127.0.0.2\n",
		"rpc_address: 127.0.0.2\n",
		"hinted_handoff_enabled: true\n", // a node back from a crash catches up
	} {
		if !strings.Contains(y, want) {
			t.Errorf("cassandra.yaml lacks %q:\n%s", want, y)
		}
	}
}

func TestCheckRing(t *testing.T) {
	good := Options{Host: "127.0.0.3", Seeds: []string{"127.0.0.1:7000"}, InitialToken: "-42"}
	if err := good.checkRing(); err != nil {
		t.Fatalf("valid ring options rejected: %v", err)
	}
	for name, o := range map[string]Options{
		"non-loopback host": {Host: "10.0.0.1", InitialToken: "0"},
		"IPv6 host":         {Host: "::1", InitialToken: "0"},
		"seed without port": {Host: "127.0.0.1", Seeds: []string{"127.0.0.1"}, InitialToken: "0"},
		"token not integer": {Host: "127.0.0.1", InitialToken: "middle"},
	} {
		if err := o.checkRing(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
	if o := (Options{}).withDefaults(); o.Host != "127.0.0.1" || o.InitialToken != "0" || o.checkRing() != nil {
		t.Errorf("defaults = host %q token %q", o.Host, o.InitialToken)
	}
}

func TestJVMArgs(t *testing.T) {
	lib := t.TempDir()
	if _, err := jvmArgs(layout{"/r"}, lib, nil); err == nil {
		t.Fatal("want error without a jamm jar")
	}
	jamm := filepath.Join(lib, "jamm-0.4.0.jar")
	if err := os.WriteFile(jamm, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args, err := jvmArgs(layout{"/r"}, lib, []string{"-Xms512m", "-Xmx768m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-Xmx768m", "-javaagent:" + jamm, "-Dcassandra.config=file:///r/conf/cassandra.yaml",
		"-Dcassandra-foreground=yes", "java.base/sun.nio.ch=ALL-UNNAMED", "jdk.unsupported/sun.misc=ALL-UNNAMED",
		"-Dcassandra.skip_wait_for_gossip_to_settle=0", "-Dcassandra.superuser_setup_delay_ms=0",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("jvm args lack %q: %q", want, args)
		}
	}
	if got := args[len(args)-3:]; got[0] != "-cp" || got[1] != lib+"/*" || got[2] != mainClass {
		t.Errorf("args end with %q, want -cp lib/* main class", got)
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(loopback, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || ports[0] == ports[1] || ports[0] <= 0 || ports[1] <= 0 {
		t.Fatalf("ports = %v, want two distinct ports", ports)
	}
	for _, p := range ports { // released again, so usable
		ln, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		ln.Close()
	}
}

// A run dir keeps its address: the first start picks free ports, later
// starts reuse them, and a remembered port taken by another process is a
// clear error rather than a move clients would not follow.
func TestChooseAddressKeepsTheRunDirsPorts(t *testing.T) {
	l := layout{t.TempDir()}
	first, err := chooseAddress(l, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.NativePort <= 0 || first.StoragePort <= 0 || first.NativePort == first.StoragePort {
		t.Fatalf("first address %+v, want two distinct ports", first)
	}
	if err := writeAddress(l, first); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := chooseAddress(l, Options{})
		if err != nil || again != first {
			t.Fatalf("restart address = %+v, %v; want %+v", again, err, first)
		}
	}
	other := freePortNot(t, first.NativePort, first.StoragePort)
	override, err := chooseAddress(l, Options{NativePort: other})
	if err != nil || override != (address{NativePort: other, StoragePort: first.StoragePort}) {
		t.Fatalf("with NativePort set: %+v, %v", override, err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, strconv.Itoa(first.NativePort)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = chooseAddress(l, Options{})
	if err == nil || !strings.Contains(err.Error(), "address.json") || !strings.Contains(err.Error(), strconv.Itoa(first.NativePort)) {
		t.Fatalf("remembered port in use: err = %v, want one naming the port and address.json", err)
	}

	fresh, err := chooseAddress(layout{t.TempDir()}, Options{StoragePort: first.StoragePort})
	if err != nil || fresh.StoragePort != first.StoragePort || fresh.NativePort <= 0 || fresh.NativePort == fresh.StoragePort {
		t.Fatalf("only StoragePort set: %+v, %v", fresh, err)
	}
}

// freePortNot returns a free port other than the given ones.
func freePortNot(t *testing.T, not ...int) int {
	t.Helper()
	ports, err := freePorts(loopback, len(not)+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if !slices.Contains(not, p) {
			return p
		}
	}
	t.Fatalf("no free port outside %v", not)
	return 0
}

func TestStateRoundTrip(t *testing.T) {
	l := layout{t.TempDir()}
	if _, err := readState(l); !errors.Is(err, errNoState) {
		t.Fatalf("readState on empty dir = %v, want errNoState", err)
	}
	want := state{PID: 4242, Host: loopback, NativePort: 19042, StoragePort: 17000, Version: "5.0.9",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := writeState(l, want); err != nil {
		t.Fatal(err)
	}
	got, err := readState(l)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
	if b, err := os.ReadFile(l.pidFile()); err != nil || string(b) != "4242\n" {
		t.Fatalf("pid file = %q, %v", b, err)
	}
	if err := removeState(l); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(l); !errors.Is(err, errNoState) {
		t.Fatalf("after removeState: %v, want errNoState", err)
	}
}

func TestHeapFlags(t *testing.T) {
	got, err := heapFlags("512m", "768m")
	if err != nil || !slices.Equal(got, []string{"-Xms512m", "-Xmx768m"}) {
		t.Fatalf("heapFlags = %v, %v", got, err)
	}
	got, err = heapFlags("512m", "300m") // min is capped to max
	if err != nil || !slices.Equal(got, []string{"-Xms300m", "-Xmx300m"}) {
		t.Fatalf("heapFlags = %v, %v", got, err)
	}
	for _, bad := range []string{"", "768", "lots", "0m", "-1g", "100m", "1t"} {
		if _, err := heapFlags("512m", bad); err == nil {
			t.Errorf("heapFlags(%q) accepted", bad)
		}
	}
}

func TestFindJava17(t *testing.T) {
	fake := func(version string) string {
		home := t.TempDir()
		if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "bin", "java"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
		rel := "IMPLEMENTOR=\"x\"\nJAVA_VERSION=\"" + version + "\"\n"
		if err := os.WriteFile(filepath.Join(home, "release"), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
		return home
	}
	j17, j25 := fake("17.0.15"), fake("25.0.3")
	if got, err := findJava17(j17); err != nil || got != j17 {
		t.Fatalf("explicit 17: %q, %v", got, err)
	}
	if _, err := findJava17(j25); err == nil {
		t.Fatal("explicit Java 25 accepted")
	}
	t.Setenv("JAVA_HOME", j17)
	if got, err := findJava17(""); err != nil || got != j17 {
		t.Fatalf("JAVA_HOME=17: %q, %v", got, err)
	}
	t.Setenv("JAVA_HOME", j25) // not 17: must fall back, never use 25
	if got, err := findJava17(""); err == nil && got == j25 {
		t.Fatal("JAVA_HOME=25 used")
	}
}

func TestCacheRoot(t *testing.T) {
	t.Setenv(CacheEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got, _ := (Options{}).cacheRoot(); got != "/xdg/artifactstate/cassandra" {
		t.Errorf("XDG cache root = %q", got)
	}
	t.Setenv(CacheEnv, "/override")
	if got, _ := (Options{}).cacheRoot(); got != "/override" {
		t.Errorf("env cache root = %q", got)
	}
	if got, _ := (Options{CacheDir: "/opt"}).cacheRoot(); got != "/opt" {
		t.Errorf("explicit cache root = %q", got)
	}
}

func TestTail(t *testing.T) {
	if got := tail([]byte("a\nb\nc\n"), 2); got != "b\nc" {
		t.Fatalf("tail = %q", got)
	}
}

func TestFetchRejectsBadVersion(t *testing.T) {
	if _, err := Fetch(t.Context(), Options{Version: "4.1.0", CacheDir: t.TempDir()}); err == nil {
		t.Fatal("Fetch accepted 4.1.0")
	}
}
