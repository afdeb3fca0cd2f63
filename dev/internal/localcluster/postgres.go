package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// PostgreSQL holds Temporal's visibility store: a private instance in the
// cluster dir, from the Debian packages (scripts/cluster installs them when
// missing).

// postgresBinDir returns the newest /usr/lib/postgresql/<major>/bin.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", errors.New("localcluster: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): " +
			"run scripts/cluster up, which installs it, or `apt-get install postgresql`")
	}
	major := func(binDir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir))) // not a number: oldest
		return n
	}
	sort.Slice(ok, func(i, j int) bool { return major(ok[i]) < major(ok[j]) })
	return ok[len(ok)-1], nil
}

// postgresCredential is the user PostgreSQL runs as: it refuses to run as
// root, so when we are root it runs as the postgres user of the Debian
// package; otherwise as ourselves (nil).
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localcluster: running as root, PostgreSQL needs the postgres user (from the Debian package): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("localcluster: postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkReachable makes sure the user of cred can reach dir: every parent
// must be searchable by it.
func checkReachable(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		var ok bool
		switch {
		case st.Uid == cred.Uid:
			ok = mode&0o100 != 0
		case st.Gid == cred.Gid:
			ok = mode&0o010 != 0
		default:
			ok = mode&0o001 != 0
		}
		if !ok {
			return fmt.Errorf("localcluster: PostgreSQL runs as the postgres user, which cannot enter %s (mode %v): "+
				"make it searchable (chmod o+x %s) or pick a cluster dir elsewhere", d, mode, d)
		}
		if d == "/" {
			return nil
		}
	}
}

// chownTree gives dir and everything in it to cred's user.
func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

// initPostgres creates the database cluster in dataDir unless it exists:
// superuser temporal, trust authentication (it listens on 127.0.0.1 only).
func initPostgres(ctx context.Context, binDir, dataDir, logFile string, cred *syscall.Credential) error {
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.RemoveAll(dataDir); err != nil { // a half-done earlier attempt
		return err
	}
	parent := filepath.Dir(dataDir)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	if err := chownTree(parent, cred); err != nil {
		return fmt.Errorf("localcluster: chown %s: %w", parent, err)
	}
	if err := checkReachable(dataDir, cred); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), "-D", dataDir, "-U", "temporal",
		"--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := runLogged(cmd, logFile); err != nil {
		return errors.Join(fmt.Errorf("localcluster: initdb: %w", err), os.RemoveAll(dataDir))
	}
	return nil
}

// postgresArgs runs the server on 127.0.0.1:port only, its socket in
// sockDir, settings sized for a small machine.
func postgresArgs(dataDir, sockDir string, port int) []string {
	return []string{"-D", dataDir, "-p", strconv.Itoa(port), "-k", sockDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=64MB",
		"-c", "logging_collector=off"}
}

// postgresReady runs pg_isready against the server.
func postgresReady(ctx context.Context, binDir string, port int) error {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "pg_isready"), "-q", "-h", "127.0.0.1",
		"-p", strconv.Itoa(port), "-U", "temporal", "-d", "postgres", "-t", "2").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_isready: %v %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// visibilitySchemaArgs are the temporal-sql-tool steps of Temporal's
// PostgreSQL visibility store (Temporal's documented procedure; compose has
// Elasticsearch instead, see README).
func visibilitySchemaArgs(port int, schemaDir string) [][]string {
	common := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "--port", strconv.Itoa(port),
		"--user", "temporal", "--db", "temporal_visibility"}
	step := func(args ...string) []string { return append(append([]string{}, common...), args...) }
	return [][]string{
		step("create-database"),
		step("setup-schema", "-v", "0.0"),
		step("update-schema", "-d", filepath.Join(schemaDir, "postgresql", "v12", "visibility", "versioned")),
	}
}
