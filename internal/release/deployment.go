// Package release manages the entity workers' Worker Deployment (Temporal's
// Worker Versioning): which build is current or ramping, how many entities
// each build still runs, and moving idle entities off old builds. The
// workers make their own version current on start-up per
// worker.versioning.promote; `artifactstate release` does the rest.
package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Deployment is one Worker Deployment of a namespace.
type Deployment struct {
	c      client.Client
	name   string
	logger *slog.Logger
}

// New returns the deployment named name.
func New(c client.Client, name string, logger *slog.Logger) *Deployment {
	return &Deployment{c: c, name: name, logger: logger}
}

// Routing is which builds take new runs and tasks of unpinned runs.
type Routing struct {
	// Current is the current build ("" when unversioned workers are current).
	Current string
	// CurrentEverSet tells an unversioned current version chosen on purpose
	// (a rollback) from a deployment nobody promoted yet.
	CurrentEverSet bool
	// Ramping takes RampingPercent of the new runs ("" and 0: none).
	Ramping        string
	RampingPercent float32
}

// Version is one build of the deployment.
type Version struct {
	BuildID  string
	Created  time.Time
	Drainage string // "", "draining" (pinned runs remain) or "drained"
}

// Describe returns the routing and the versions; ok is false when no worker
// of the deployment has polled yet.
func (d *Deployment) Describe(ctx context.Context) (routing Routing, versions []Version, ok bool, err error) {
	resp, err := d.c.WorkerDeploymentClient().GetHandle(d.name).Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return routing, nil, false, nil
	}
	if err != nil {
		return routing, nil, false, fmt.Errorf("describe worker deployment %s: %w", d.name, err)
	}
	return routingOf(resp.Info.RoutingConfig), versionsOf(resp.Info.VersionSummaries), true, nil
}

func routingOf(rc client.WorkerDeploymentRoutingConfig) Routing {
	r := Routing{CurrentEverSet: !rc.CurrentVersionChangedTime.IsZero(), RampingPercent: rc.RampingVersionPercentage}
	if rc.CurrentVersion != nil {
		r.Current = rc.CurrentVersion.BuildID
	}
	if rc.RampingVersion != nil {
		r.Ramping = rc.RampingVersion.BuildID
	}
	return r
}

func versionsOf(summaries []client.WorkerDeploymentVersionSummary) []Version {
	var out []Version
	for _, s := range summaries {
		v := Version{BuildID: s.Version.BuildID, Created: s.CreateTime}
		switch s.DrainageStatus {
		case client.WorkerDeploymentVersionDrainageStatusDraining:
			v.Drainage = "draining"
		case client.WorkerDeploymentVersionDrainageStatusDrained:
			v.Drainage = "drained"
		}
		out = append(out, v)
	}
	return out
}

// SetCurrent makes buildID ("": unversioned workers) the current version.
// The version must have been polled by a worker (its queues registered):
// SetCurrent retries until ctx ends while it has not.
func (d *Deployment) SetCurrent(ctx context.Context, buildID string) error {
	return d.retry(ctx, "make "+describeBuild(buildID)+" current", func() error { return d.setCurrent(ctx, buildID) })
}

func (d *Deployment) setCurrent(ctx context.Context, buildID string) error {
	_, err := d.c.WorkerDeploymentClient().GetHandle(d.name).SetCurrentVersion(ctx,
		client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID})
	return err
}

// SetRamping sends percent of the new runs to buildID ("" and 0: stop
// ramping).
func (d *Deployment) SetRamping(ctx context.Context, buildID string, percent float32) error {
	return d.retry(ctx, fmt.Sprintf("ramp %s to %.0f%%", describeBuild(buildID), percent), func() error {
		_, err := d.c.WorkerDeploymentClient().GetHandle(d.name).SetRampingVersion(ctx,
			client.WorkerDeploymentSetRampingVersionOptions{BuildID: buildID, Percentage: percent})
		return err
	})
}

// Promote makes buildID current as policy says (config.PromoteIfNoCurrent:
// only when nobody ever chose a current version; config.PromoteAlways) and
// reports whether it did. A worker calls it once its pollers run.
func (d *Deployment) Promote(ctx context.Context, buildID, policy string) (bool, error) {
	if policy == config.PromoteNever {
		return false, nil
	}
	var promoted bool
	err := d.retry(ctx, "promote "+describeBuild(buildID), func() error {
		routing, _, ok, err := d.Describe(ctx)
		if err != nil {
			return err
		}
		if ok && (routing.Current == buildID || policy == config.PromoteIfNoCurrent && (routing.Current != "" || routing.CurrentEverSet)) {
			return nil // current already, or somebody chose
		}
		if err := d.setCurrent(ctx, buildID); err != nil {
			return err
		}
		promoted = true
		return nil
	})
	return promoted, err
}

// retry runs op until it succeeds, fails for good, or ctx ends: the server
// answers NotFound or FailedPrecondition until the workers of a new version
// have polled, and a concurrent change of the deployment fails with a
// conflict.
func (d *Deployment) retry(ctx context.Context, what string, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		var invalid *serviceerror.InvalidArgument
		var denied *serviceerror.PermissionDenied
		if errors.As(err, &invalid) || errors.As(err, &denied) {
			return fmt.Errorf("%s of worker deployment %s: %w", what, d.name, err)
		}
		if attempt%10 == 0 {
			d.logger.Info("Waiting to "+what, "deployment", d.name, "attempt", attempt, "error", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s of worker deployment %s: %w (last error: %v)", what, d.name, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describeBuild(buildID string) string {
	if buildID == "" {
		return "unversioned workers"
	}
	return "build " + buildID
}
