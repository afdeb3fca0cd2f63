package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/localcassandra"
)

// procSpec says how to run one process of the cluster.
type procSpec struct {
	Name string
	Path string
	Args []string
	Env  []string // added to the environment of this process
	// Log is the file stdout and stderr go to (appended).
	Log string
	// Cred, when set, runs the process as that user (PostgreSQL refuses to
	// run as root).
	Cred *syscall.Credential
}

// argv is the command line the process shows in /proc/<pid>/cmdline: it
// identifies the process (see isProcess), so pid reuse cannot fool us.
func (s procSpec) argv() []string { return append([]string{s.Path}, s.Args...) }

// launch starts the process detached from ours (own session, stdin from
// /dev/null, output to its log), so it outlives the command that started
// it. The returned channel closes when it exits, if we are its parent.
func launch(s procSpec) (pid int, exited <-chan struct{}, err error) {
	logF, err := appendLog(s.Log, "starting "+strings.Join(s.argv(), " "))
	if err != nil {
		return 0, nil, fmt.Errorf("localcluster: log of %s: %w", s.Name, err)
	}
	defer logF.Close() // the child has its own descriptor
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.Cred}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("localcluster: start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // reap it; the exit status is in its log
	// Start returns once the kernel closed the child's close-on-exec pipe,
	// which execve does before it sets up the new program's arguments: for a
	// moment /proc/<pid>/cmdline is empty (seen on a busy machine). Wait until
	// it shows argv, so the process is identifiable as soon as launch returns.
	pid = cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); !isProcess(pid, s.argv()) && time.Now().Before(deadline); {
		select {
		case <-done:
			return pid, done, nil // exited at once: its log says why
		case <-time.After(time.Millisecond): // nothing to wait on but /proc
		}
	}
	return pid, done, nil
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')') // pid (comm) state ...; comm may hold spaces
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// isProcess reports whether pid is alive and runs exactly argv.
func isProcess(pid int, argv []string) bool {
	if pid <= 0 || !alive(pid) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	return slices.Equal(got, argv)
}

// signalAndWait sends sig to pid and waits until it is gone, up to grace;
// then SIGKILLs it. It never signals a process that is not argv.
func signalAndWait(ctx context.Context, pid int, argv []string, sig syscall.Signal, grace time.Duration) error {
	if !isProcess(pid, argv) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("localcluster: signal pid %d: %w", pid, err)
	}
	if waitGone(ctx, pid, grace) {
		return nil
	}
	if sig != syscall.SIGKILL {
		_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: gone meanwhile, fine
		if waitGone(ctx, pid, 10*time.Second) {
			return nil
		}
	}
	return fmt.Errorf("localcluster: pid %d did not exit", pid)
}

// waitGone polls until pid is gone (or a zombie), up to d.
func waitGone(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return !alive(pid)
		}
		time.Sleep(50 * time.Millisecond) // polling a pid: there is nothing to wait on
	}
	return true
}

// Every process's and command's output is appended to a log file of the
// cluster directory, after a line marking its start: "=== <time>: <what>".

// appendLog opens the log at path for appending (making its directory)
// and writes the start marker of what comes next.
func appendLog(path, what string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "\n%s%s: %s\n", logMarker, time.Now().UTC().Format(time.RFC3339), what); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

// runLogged runs cmd to its end, its output appended to the log at path;
// its error carries the last lines the command wrote.
func runLogged(cmd *exec.Cmd, path string) error {
	f, err := appendLog(path, strings.Join(cmd.Args, " "))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w; last lines of %s:\n%s", err, path, logTail(path, 20))
	}
	return nil
}

// logMarker starts the line appendLog writes before each start.
const logMarker = "=== "

// logTail returns the last n lines of a log file written since the last
// start marker, for error messages.
func logTail(path string, n int) string { return localcassandra.LogTail(path, 32<<10, n, logMarker) }
