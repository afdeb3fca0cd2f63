package config

import (
	"strings"
	"time"
)

// Worker configures the Temporal worker that runs the entities.
type Worker struct {
	// MaxHistoryEvents is the event budget after which an entity run
	// continues as new (0: only when the server suggests it).
	MaxHistoryEvents int `yaml:"maxHistoryEvents" env:"MAX_HISTORY_EVENTS"`
	// StickyCacheSize is how many entities the worker keeps in memory.
	StickyCacheSize int `yaml:"stickyCacheSize" env:"STICKY_CACHE_SIZE"`
	// PollerBehavior is autoscaling (the SDK grows and shrinks the pollers
	// of each queue between 16 (or the maximum, if lower) and
	// WorkflowTaskPollers/ActivityTaskPollers,
	// and keeps polling the entity queue while the worker's sticky queue has
	// a backlog) or simple (a fixed number; under load every poll can move
	// to the sticky queue and new entities' first tasks wait for seconds).
	PollerBehavior string `yaml:"pollerBehavior" env:"POLLER_BEHAVIOR"`
	// WorkflowTaskPollers and ActivityTaskPollers are the maximum number of
	// pollers per queue (autoscaling) or the fixed number (simple).
	WorkflowTaskPollers int `yaml:"workflowTaskPollers" env:"WORKFLOW_TASK_POLLERS"`
	ActivityTaskPollers int `yaml:"activityTaskPollers" env:"ACTIVITY_TASK_POLLERS"`
	// StickyScheduleToStartTimeout is how long a task for an entity cached
	// on this worker waits for it before going to any worker: it bounds the
	// extra latency of reads and writes of entities cached on a worker that
	// died.
	StickyScheduleToStartTimeout time.Duration `yaml:"stickyScheduleToStartTimeout" env:"STICKY_SCHEDULE_TO_START_TIMEOUT"`
	// DeadlockDetectionTimeout fails a workflow task whose code does not
	// yield for this long (the SDK's default, 1 s, also fired on a healthy
	// worker whose CPU was starved, failing reads).
	DeadlockDetectionTimeout   time.Duration `yaml:"deadlockDetectionTimeout" env:"DEADLOCK_DETECTION_TIMEOUT"`
	MaxConcurrentWorkflowTasks int           `yaml:"maxConcurrentWorkflowTasks" env:"MAX_CONCURRENT_WORKFLOW_TASKS"`
	MaxConcurrentActivities    int           `yaml:"maxConcurrentActivities" env:"MAX_CONCURRENT_ACTIVITIES"`
	// Identity names this worker in histories; empty means host@pid.
	Identity string `yaml:"identity" env:"IDENTITY"`
	// StopTimeout bounds the wait for running activities on shutdown.
	StopTimeout time.Duration `yaml:"stopTimeout" env:"STOP_TIMEOUT"`
	// ReconcileInterval is how often the worker looks for entities closed by
	// an operator (or failed) and starts them again from their last state,
	// before the namespace's retention deletes that state; 0 turns it off.
	ReconcileInterval time.Duration `yaml:"reconcileInterval" env:"RECONCILE_INTERVAL"`
	// Versioning makes the worker a version of a Worker Deployment.
	Versioning Versioning `yaml:"versioning" envPrefix:"VERSIONING_"`
}

// Versioning configures Worker Versioning (Temporal's Worker Deployments):
// the worker polls as version BuildID of DeploymentName, every entity run is
// pinned to the build that started it, new runs (new pairs, and every
// continue-as-new) start on the deployment's current version, and an entity
// moves to a new build only at a continue-as-new: no history is ever
// replayed by a build older than the one that wrote it. See the README's
// release runbook.
type Versioning struct {
	// Enabled turns Worker Versioning on. Off, the worker is unversioned:
	// every worker of the task queue takes any entity, so a rolling deploy
	// replays histories on both the old and the new build.
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// DeploymentName names the Worker Deployment (no '.' or ':'); under
	// temporal-worker-controller, TEMPORAL_DEPLOYMENT_NAME, which it sets.
	DeploymentName string `yaml:"deploymentName" env:"DEPLOYMENT_NAME"`
	// BuildID names this build within the deployment; empty means
	// TEMPORAL_WORKER_BUILD_ID (temporal-worker-controller sets it), else
	// the binary's commit (the dev role: "dev", one build at a time).
	BuildID string `yaml:"buildId" env:"BUILD_ID"`
	// Promote says when the worker makes its own version current:
	// ifNoCurrent (nobody ever chose a current version: the deployment's
	// first versioned build, or an upgrade from unversioned workers),
	// always (the dev role), or never (an operator, `artifactstate release
	// promote`, or temporal-worker-controller does it).
	Promote string `yaml:"promote" env:"PROMOTE"`
}

// Versioning promotion policies.
const (
	PromoteIfNoCurrent = "ifNoCurrent"
	PromoteAlways      = "always"
	PromoteNever       = "never"
)

func (v Versioning) check(p *Problems) {
	if !v.Enabled {
		return
	}
	if v.DeploymentName == "" || strings.ContainsAny(v.DeploymentName, ".:") || strings.HasPrefix(v.DeploymentName, "__") {
		p.Add("worker.versioning.deploymentName", "must be a non-empty name without '.' or ':', not starting with '__', got %q", v.DeploymentName)
	}
	if strings.HasPrefix(v.BuildID, "__") {
		p.Add("worker.versioning.buildId", "must not start with '__', got %q", v.BuildID)
	}
	switch v.Promote {
	case PromoteIfNoCurrent, PromoteAlways, PromoteNever:
	default:
		p.Add("worker.versioning.promote", "must be %s, %s or %s, got %q", PromoteIfNoCurrent, PromoteAlways, PromoteNever, v.Promote)
	}
}

func defaultWorker() Worker {
	return Worker{
		MaxHistoryEvents:             2000,
		StickyCacheSize:              10000,
		PollerBehavior:               "autoscaling",
		WorkflowTaskPollers:          100,
		ActivityTaskPollers:          20,
		StickyScheduleToStartTimeout: 2 * time.Second,
		DeadlockDetectionTimeout:     5 * time.Second,
		MaxConcurrentWorkflowTasks:   200,
		MaxConcurrentActivities:      200,
		StopTimeout:                  10 * time.Second,
		Versioning: Versioning{
			Enabled:        true,
			DeploymentName: "artifactstate",
			Promote:        PromoteIfNoCurrent,
		},
	}
}

func (w Worker) check(p *Problems) {
	if w.MaxHistoryEvents != 0 && (w.MaxHistoryEvents < 100 || w.MaxHistoryEvents > 40000) {
		p.Add("worker.maxHistoryEvents", "must be 0 (server decides) or between 100 and 40000, got %d", w.MaxHistoryEvents)
	}
	p.atLeast("worker.stickyCacheSize", w.StickyCacheSize, 0)
	switch w.PollerBehavior {
	case "autoscaling", "simple":
	default:
		p.Add("worker.pollerBehavior", "must be autoscaling or simple, got %q", w.PollerBehavior)
	}
	p.atLeast("worker.workflowTaskPollers", w.WorkflowTaskPollers, 2)
	p.atLeast("worker.activityTaskPollers", w.ActivityTaskPollers, 1)
	p.positive("worker.stickyScheduleToStartTimeout", w.StickyScheduleToStartTimeout)
	p.positive("worker.deadlockDetectionTimeout", w.DeadlockDetectionTimeout)
	p.atLeast("worker.maxConcurrentWorkflowTasks", w.MaxConcurrentWorkflowTasks, 2)
	p.atLeast("worker.maxConcurrentActivities", w.MaxConcurrentActivities, 1)
	p.positive("worker.stopTimeout", w.StopTimeout)
	if w.ReconcileInterval < 0 {
		p.Add("worker.reconcileInterval", "must be 0 (off) or a positive duration, got %v", w.ReconcileInterval)
	}
	w.Versioning.check(p)
}
