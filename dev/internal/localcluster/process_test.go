package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLaunchIdentifyKill runs a real detached process: it is recognised by
// its exact command line only, survives nothing but the signal sent to it,
// and writes to its log.
func TestLaunchIdentifyKill(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	dir := t.TempDir()
	spec := procSpec{Name: "sleeper", Path: sleep, Args: []string{"300"}, Log: filepath.Join(dir, "logs", "sleeper.log")}
	pid, exited, err := launch(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !isProcess(pid, spec.argv()) {
		t.Fatalf("pid %d not recognised as %q", pid, spec.argv())
	}
	if isProcess(pid, []string{sleep, "301"}) || isProcess(pid, []string{sleep}) {
		t.Fatal("another command line recognised as the process")
	}
	if sid, err := sessionOf(pid); err != nil || sid != pid {
		t.Errorf("session of pid %d = %d, %v: want its own (detached from ours)", pid, sid, err)
	}
	// A different command line is never signalled.
	if err := signalAndWait(t.Context(), pid, []string{sleep, "301"}, syscall.SIGKILL, time.Second); err != nil || !alive(pid) {
		t.Fatalf("signalled a process that was not the one named: %v, alive %t", err, alive(pid))
	}
	if err := signalAndWait(t.Context(), pid, spec.argv(), syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	if alive(pid) || isProcess(pid, spec.argv()) {
		t.Fatalf("pid %d still alive", pid)
	}
	log, err := os.ReadFile(spec.Log)
	if err != nil || !strings.Contains(string(log), "starting "+sleep+" 300") {
		t.Errorf("log = %q, %v", log, err)
	}
}

func TestLockDirExcludes(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockDir(ctx, dir); err == nil {
		t.Fatal("second lock taken while the first is held")
	}
	unlock()
	unlock2, err := lockDir(t.Context(), dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.json")
	st, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	st.Ports.CassandraNative = 19042
	st.Ports.Temporal["temporal-frontend"] = temporalPorts{GRPC: 1, Membership: 2, HTTP: 3, Metrics: 4}
	st.Ports.App["api-1"] = 8082
	st.Procs["api-1"] = procState{PID: 42, Argv: []string{"/bin/x", "api"}, Address: "http://127.0.0.1:8082"}
	if err := writeState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ports.CassandraNative != 19042 || got.Ports.Temporal["temporal-frontend"].HTTP != 3 ||
		got.Ports.App["api-1"] != 8082 || got.Procs["api-1"].PID != 42 || got.Procs["api-1"].Argv[1] != "api" {
		t.Fatalf("round trip: %+v", got)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(path); err == nil {
		t.Fatal("a corrupt state file read without error")
	}
}

func TestCheckReachable(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkReachable(inner, nil); err != nil {
		t.Fatalf("no credential: %v", err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if err := os.Chmod(filepath.Join(dir, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 65534 {
		t.Skip("running as nobody")
	}
	if err := checkReachable(inner, nobody); err == nil {
		t.Fatal("a 0700 parent owned by another user counted as reachable")
	}
}

// sessionOf reads the session id of pid from /proc/<pid>/stat.
func sessionOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid pgrp session ...
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 4 {
		return 0, fmt.Errorf("short stat: %q", b)
	}
	return strconv.Atoi(fields[3])
}

// A command run to its end appends to its log after a start marker, and
// its failure tells the lines it wrote in this run only.
func TestRunLoggedTellsTheLastRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "tool.log")
	if err := runLogged(exec.Command("sh", "-c", "echo first run"), path); err != nil {
		t.Fatal(err)
	}
	err := runLogged(exec.Command("sh", "-c", "echo second run; exit 3"), path)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "second run") ||
		strings.Contains(err.Error(), "first run") {
		t.Fatalf("err = %v", err)
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(log), "\n"+logMarker) != 2 || !strings.Contains(string(log), "first run") {
		t.Fatalf("log:\n%s", log)
	}
}
