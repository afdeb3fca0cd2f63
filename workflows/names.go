// Package workflows holds the entity workflow: one long-running workflow per
// (user, artifact) pair whose event history is the pair's durable state.
//
// Everything named here is durable: the names appear in the histories of
// running entities and in the API's calls, so they never change.
package workflows

import (
	"slices"

	"go.temporal.io/sdk/temporal"
)

// Durable names of the entity workflow and its handlers.
const (
	// EntityWorkflowName is the registered workflow type of every entity.
	EntityWorkflowName = "ArtifactStateEntity"

	// CommandUpdateName is the update that carries every write the API makes
	// (history version 3 on): it is validated before it enters history and
	// answers the state after the command. Its input is a CommandRequest, its
	// result a CommandResult.
	CommandUpdateName = "applyCommand"

	// CommandSignalName is the signal that carried every write before
	// history version 3; it still works (fire-and-forget). A single channel
	// keeps signalled commands in history order: the Go SDK buffers all
	// signals of a workflow task before workflow code runs, so commands
	// spread over several channels could be applied out of order.
	CommandSignalName = "command"

	// UpgradeUpdateName asks an entity to continue as new at once (an
	// update: its input is an UpgradeRequest, it answers nothing), so that
	// its next run starts on the deployment's current version: `artifactstate
	// release upgrade` sends it to idle entities pinned to an older build
	// (Worker Versioning). An update, not a signal: a signal that arrives
	// while a run closes makes the server refuse the close, and the writes
	// of that task fail; an update then waits for the next run.
	UpgradeUpdateName = "upgrade"

	// QueryGetAllStates returns the whole State.
	QueryGetAllStates = "getAllStates"
	// QueryIsArtifactReadByUser returns State.ArtifactRead.
	QueryIsArtifactReadByUser = "isArtifactReadByUser"
	// QueryIsArtifactInUserFeed returns State.ArtifactInUserFeed.
	QueryIsArtifactInUserFeed = "isArtifactInUserFeed"
)

// Failure types of a rejected CommandUpdateName update (the validator's
// temporal.ApplicationError type). A rejected update leaves no trace in
// history.
const (
	// ErrTypeInvalidCommand: the command kind is unknown.
	ErrTypeInvalidCommand = "InvalidCommand"
	// ErrTypeVersionMismatch: CommandRequest.IfVersion is not the current
	// version. The error's details hold the current State.
	ErrTypeVersionMismatch = "VersionMismatch"
	// ErrTypeIdempotencyKeyReused: the idempotency key was used before for a
	// different command kind.
	ErrTypeIdempotencyKeyReused = "IdempotencyKeyReused"
)

// Metrics the entity workflow emits through the SDK's metrics handler (not
// emitted during replay); Prometheus names get a _total suffix.
const (
	// MetricCommands counts commands applied, tagged by command kind.
	MetricCommands = "artifactstate_entity_commands"
	// MetricStateChanges counts commands that changed a flag.
	MetricStateChanges = "artifactstate_entity_state_changes"
	// MetricContinueAsNew counts runs that continued as new.
	MetricContinueAsNew = "artifactstate_entity_continue_as_new"
)

// CommandKind names one of the three commands of the original service.
type CommandKind string

// The commands; their values are the original endpoint names.
const (
	SetArtifactReadByUser          CommandKind = "setArtifactReadByUser"
	SetArtifactAddedToUserFeed     CommandKind = "setArtifactAddedToUserFeed"
	SetArtifactRemovedFromUserFeed CommandKind = "setArtifactRemovedFromUserFeed"
)

// CommandKinds lists every command, in the order the APIs name them. Every
// layer reads it: the HTTP routes and checks, the gRPC API's enum mapping,
// the load generator. A new command is a constant above added here, its
// effect in State.Apply, and its value in the proto enum CommandKind
// (COMMAND_KIND_ and the name in upper snake case, which the gRPC API's
// tests check); do not modify the list at run time.
var CommandKinds = []CommandKind{SetArtifactReadByUser, SetArtifactAddedToUserFeed, SetArtifactRemovedFromUserFeed}

// Valid reports whether k is one of the known commands.
func (k CommandKind) Valid() bool { return slices.Contains(CommandKinds, k) }

// Command is the payload of CommandSignalName.
type Command struct {
	Kind CommandKind `json:"kind"`
}

// UpgradeRequest is the input of UpgradeUpdateName.
type UpgradeRequest struct {
	// Reason is logged by the entity.
	Reason string `json:"reason,omitempty"`
}

// CommandRequest is the input of CommandUpdateName.
type CommandRequest struct {
	Kind CommandKind `json:"kind"`
	// IdempotencyKey, when not empty, makes the command apply at most once:
	// a request with a key the entity has seen answers the first request's
	// result and applies nothing (see IdempotencyRecord for how long a key
	// is remembered).
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// IfVersion, when set, applies the command only if the entity's state
	// has this version; otherwise the update is rejected with
	// ErrTypeVersionMismatch.
	IfVersion *uint64 `json:"ifVersion,omitempty"`
}

// CommandResult is the result of CommandUpdateName: the state right after
// the command was applied.
type CommandResult struct {
	State State `json:"state"`
}

// Custom search attributes of the entities (history version 3 on), so
// `temporal workflow list --query` and the Web UI find a user's entities and
// the entities still on old code. They must be registered in the namespace
// (`artifactstate migrate` does it; the dev server creates them); the API
// sets the user and artifact IDs when it starts an entity unless
// temporal.searchAttributes is off (user IDs are personal data).
var (
	// SearchAttributeUserID is the pair's user ID (Keyword).
	SearchAttributeUserID = temporal.NewSearchAttributeKeyKeyword("ArtifactStateUserId")
	// SearchAttributeArtifactID is the pair's artifact ID (Int).
	SearchAttributeArtifactID = temporal.NewSearchAttributeKeyInt64("ArtifactStateArtifactId")
	// SearchAttributeHistoryVersion was the HistoryVersion of the code that
	// ran the entity's current run (Int), stamped by the API of versions 3
	// and 4 and kept by their runs; it stays registered for their
	// histories. From version 5 nothing sets it and a run that carries a
	// value other than 4 removes it (see upsertHistoryVersion).
	SearchAttributeHistoryVersion = temporal.NewSearchAttributeKeyInt64("ArtifactStateHistoryVersion")
)
