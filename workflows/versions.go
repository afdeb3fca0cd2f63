package workflows

// Every workflow.GetVersion change ID of the entity workflow, in one place.
// Read docs/workflow-versioning.md before adding one: a change ID lives as
// long as any history that recorded it.
const (
	// ChangeFieldChangedAt (history version 2): each run records when each
	// flag changes (State.ArtifactReadChangedAt and
	// State.ArtifactInUserFeedChangedAt). Runs of version 1 leave them zero.
	ChangeFieldChangedAt = "field-changed-at"

	// ChangeLocalProjection (history version 3): the projection first runs
	// as a local activity in the workflow task that changed the state, and
	// falls back to a regular activity on the read model's own task queue;
	// projections carry the entity's projection clock as their write
	// timestamp and delete only on a true→false change; a run paused on a
	// rejected projection still continues as new when its history is due;
	// every signalled command is decoded into a fresh value. Runs of
	// versions 1 and 2 keep projecting with a regular activity on the
	// entity's queue, timestamped with the state version.
	ChangeLocalProjection = "local-projection"

	// ChangeProjectNewLife (history version 4): an entity whose state is
	// still the zero state and that never projected (a new pair, or a pair
	// that starts again from zero beside an older read model) projects at
	// its first command even when the command changes nothing, so the rows
	// of an earlier life of the pair are replaced. Runs of version 3 project
	// only changes.
	ChangeProjectNewLife = "project-new-life"
)

// History version 5 has no change ID: from version 5 a versioned worker
// (Worker Versioning, pinned runs) records the history version in the
// options every run records at its start (Options.HistoryVersion), and the
// run takes every change up to it without a version marker (two events and
// a visibility update less per change per run). Version 5 itself: an
// idempotent retry counts toward the history budget; a forced first
// projection (ChangeProjectNewLife) the run did not finish is carried to
// the next run (ProjectionProgress.Forced); SearchAttributeHistoryVersion is
// no longer kept. Runs of unversioned workers record the markers of
// version 4 and stay version 4, so an unversioned fleet mixing this build
// and the previous one in a rolling deploy replays every run on either.
// Every version continues as new when asked (UpgradeUpdateName) or when the
// deployment has a new current version for a pinned run.

// HistoryVersion names the shape of the histories the current code writes.
// The replay corpus files are named v<HistoryVersion>-<scenario>.json.gz, so
// the corpus keeps one set of histories per version that ever shipped.
const HistoryVersion = 5
