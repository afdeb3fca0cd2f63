package workflows

import (
	"fmt"
	"time"

	"github.com/artifactstate/artifactstate/internal/projection"
)

// State is what the queries of one pair answer.
type State struct {
	ArtifactRead       bool `json:"artifactRead"`
	ArtifactInUserFeed bool `json:"artifactInUserFeed"`

	// Version grows by one with every change of the two flags over the
	// entity's whole life (it is carried across continue-as-new), so a newer
	// state always has a higher version.
	Version uint64 `json:"version"`
	// CommandsApplied counts every command applied over the entity's life,
	// whether it changed a flag or not: exactly one per accepted command.
	CommandsApplied uint64 `json:"commandsApplied"`
	// Run is 1 in the entity's first run and grows by one at each
	// continue-as-new.
	Run uint64 `json:"run"`

	// ArtifactReadChangedAt and ArtifactInUserFeedChangedAt are when each
	// flag last changed (workflow time). Zero when unknown: never changed,
	// or changed by a run of history version 1 (see ChangeFieldChangedAt).
	ArtifactReadChangedAt       time.Time `json:"artifactReadChangedAt,omitzero"`
	ArtifactInUserFeedChangedAt time.Time `json:"artifactInUserFeedChangedAt,omitzero"`
}

// Apply changes the state as the command says, at time at (zero: not
// recorded); it reports whether a flag changed. Every command is idempotent:
// applying it twice in a row changes nothing the second time.
func (s *State) Apply(kind CommandKind, at time.Time) (changed bool, err error) {
	read, inFeed := s.ArtifactRead, s.ArtifactInUserFeed
	switch kind {
	case SetArtifactReadByUser:
		read = true
	case SetArtifactAddedToUserFeed:
		inFeed = true
	case SetArtifactRemovedFromUserFeed:
		inFeed = false
	default:
		return false, fmt.Errorf("unknown command kind %q", kind)
	}
	s.CommandsApplied++
	if !at.IsZero() {
		if read != s.ArtifactRead {
			s.ArtifactReadChangedAt = at
		}
		if inFeed != s.ArtifactInUserFeed {
			s.ArtifactInUserFeedChangedAt = at
		}
	}
	changed = read != s.ArtifactRead || inFeed != s.ArtifactInUserFeed
	if changed {
		s.ArtifactRead, s.ArtifactInUserFeed = read, inFeed
		s.Version++
	}
	return changed, nil
}

// StartState is the state a run begins with: the carried state, one run on.
// A run's state is StartState of its input with every command of its history
// applied in order, which is how the state of a closed run is recovered.
func StartState(in EntityInput) State {
	s := in.State
	s.Run++
	return s
}

// EntityInput is the input of every run of an entity.
type EntityInput struct {
	UserID     string `json:"userId"`
	ArtifactID int64  `json:"artifactId"`
	// State carried over from the previous run (continue-as-new, or the
	// re-creation of a closed entity); zero for a new entity.
	State State `json:"state"`
	// Projection is how far the read model had caught up.
	Projection ProjectionProgress `json:"projection"`
	// Idempotency remembers the results of the latest commands sent with an
	// idempotency key, so a retry after a continue-as-new still applies at
	// most once (history version 3).
	Idempotency IdempotencyRecords `json:"idempotency,omitempty"`
}

// ProjectionProgress is the read model's progress, carried across runs.
type ProjectionProgress struct {
	// Version is the newest state version known to be in the read model.
	Version uint64 `json:"version"`
	// ChangedAt is when the state last changed (zero if unknown), to
	// measure the projection lag.
	ChangedAt time.Time `json:"changedAt"`
	// Timestamp is the entity's projection clock (history version 3): the
	// write timestamp of its latest projection, in microseconds since the
	// Unix epoch. The next projection writes above it.
	Timestamp int64 `json:"timestamp,omitempty"`
	// Forced is set when the run ended before a projection it owed although
	// the state was not ahead (ChangeProjectNewLife's first projection of a
	// new life): the next run makes it (history version 5).
	Forced bool `json:"forced,omitempty"`
}

// nextTimestamp is the write timestamp of the next projection: above every
// earlier one, and at least the workflow's clock, so it also outranks rows
// written before the entity's current life began (a new chain of runs starts
// again from zero) and ordinary writes made by hand before it.
func (p ProjectionProgress) nextTimestamp(now time.Time) int64 {
	return max(p.Timestamp+1, now.UnixMicro())
}

// projected is what a projection wrote, as the flags the next one compares.
func projected(in projection.Input) *projection.Flags {
	f := in.Flags()
	return &f
}
