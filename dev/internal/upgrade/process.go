package upgrade

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is one running artifactstate process; its output goes to its log
// file, which outlives it.
type Proc struct {
	Name    string
	LogPath string
	// ReadyURL answers /readyz 200 once the process serves.
	ReadyURL string
	bin      string
	args     []string
	env      []string
	cmd      *exec.Cmd
	done     chan struct{}
}

// newProc describes a process; Start runs it.
func newProc(name, bin string, args, env []string, logPath, readyURL string) *Proc {
	return &Proc{Name: name, LogPath: logPath, ReadyURL: readyURL, bin: bin, args: args, env: env}
}

// Start runs the process and waits until it is ready.
func (p *Proc) Start(ctx context.Context) error {
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child keeps its own descriptor
	fmt.Fprintf(log, "\n=== %s: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait() // the exit status shows in the log
		close(done)
	}(p.cmd, p.done)
	return p.waitReady(ctx)
}

func (p *Proc) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready; its log:\n%s", p.Name, p.Tail(40))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v); its log:\n%s", p.Name, ctx.Err(), last, p.Tail(40))
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(p.ReadyURL + "/readyz")
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("/readyz answered %d", resp.StatusCode)
	}
}

// Running reports whether the process runs.
func (p *Proc) Running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop stops the process as a deploy does (SIGTERM: it drains and exits),
// killing it if it lingers past grace.
func (p *Proc) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.Name, grace)
	}
}

// Kill crashes the process (SIGKILL).
func (p *Proc) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Log is everything the process (every start of it) wrote.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(log of %s unreadable: %v)", p.Name, err)
	}
	return string(b)
}

// Tail is the last n lines of the log.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
