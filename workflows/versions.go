package workflows

// Every workflow.GetVersion change ID of the entity workflow, in one place.
// Read docs/workflow-versioning.md before adding one: a change ID lives as
// long as any history that recorded it.
const (
	// ChangeFieldChangedAt (history version 2): each run records when each
	// flag changes (State.ArtifactReadChangedAt and
	// State.ArtifactInUserFeedChangedAt). Runs of version 1 leave them zero.
	ChangeFieldChangedAt = "field-changed-at"
)

// HistoryVersion names the shape of the histories the current code writes:
// 1 + the number of change IDs above. The replay corpus files are named
// v<HistoryVersion>-<scenario>.json.gz, so the corpus keeps one set of
// histories per version that ever shipped.
const HistoryVersion = 2
