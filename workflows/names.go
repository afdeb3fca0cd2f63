// Package workflows holds the entity workflow: one long-running workflow per
// (user, artifact) pair whose event history is the pair's durable state.
//
// Everything named here is durable: the names appear in the histories of
// running entities and in the API's calls, so they never change.
package workflows

// Durable names of the entity workflow and its handlers.
const (
	// EntityWorkflowName is the registered workflow type of every entity.
	EntityWorkflowName = "ArtifactStateEntity"

	// CommandSignalName is the one signal that carries every write. A single
	// channel keeps commands in history order: the Go SDK buffers all signals
	// of a workflow task before workflow code runs, so commands spread over
	// several channels could be applied out of order (an "add to feed"
	// followed by a "remove" must leave the artifact out of the feed).
	CommandSignalName = "command"

	// QueryGetAllStates returns the whole State.
	QueryGetAllStates = "getAllStates"
	// QueryIsArtifactReadByUser returns State.ArtifactRead.
	QueryIsArtifactReadByUser = "isArtifactReadByUser"
	// QueryIsArtifactInUserFeed returns State.ArtifactInUserFeed.
	QueryIsArtifactInUserFeed = "isArtifactInUserFeed"
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

// Valid reports whether k is one of the known commands.
func (k CommandKind) Valid() bool {
	switch k {
	case SetArtifactReadByUser, SetArtifactAddedToUserFeed, SetArtifactRemovedFromUserFeed:
		return true
	}
	return false
}

// Command is the payload of CommandSignalName.
type Command struct {
	Kind CommandKind `json:"kind"`
}
