// Package linearizability checks that what clients saw of (user, artifact)
// pairs is linearizable: that every operation can be placed at one instant
// between its invocation and its response so that, in that order, each one
// is what one pair applying the operations one at a time would have
// answered. The checker is github.com/anishathalye/porcupine; this package
// gives it the model of one pair and a recorder of what clients did.
//
// # The model
//
// A pair's state is {read, inFeed}, both false before its first write.
// Writes: setArtifactReadByUser sets read (nothing clears it),
// setArtifactAddedToUserFeed sets inFeed, setArtifactRemovedFromUserFeed
// clears it; a write that reports the state after it (Output.StateReported)
// must report exactly the state it produced. Reads: getAllStates must answer
// both flags of the state at its instant, isArtifactReadByUser the read
// flag, isArtifactInUserFeed the inFeed flag.
//
// Failures are "may or may not have happened": a write whose outcome is
// unknown (503, 504, 500, no answer in time, a crash) may take effect at any
// instant after its invocation, however late, or never; it is porcupine's
// convention of an infinite response time. A read that failed told nothing
// and is dropped; so is a write known not to have been applied (a 4xx
// rejection).
//
// Every pair starts from the empty state: check pairs no one wrote before
// the recording began.
//
// # How porcupine sees it
//
// Porcupine searches the orders of overlapping operations; its search grows
// exponentially with how many overlap, and a hot pair read by 16 clients
// while 4 write it is out of its reach when every read is an interval (a
// 2,000-operation history of 20 clients did not finish in 20 s). Reads
// change nothing, so the check gives them to porcupine as two instants, the
// read's invocation and its response, and the model tracks each open read:
// it is satisfied if the state equals its answer at its invocation or after
// any write placed before its response. A write of unknown outcome is an
// instant too, at its invocation, that leaves a pending effect the model may
// apply before any later step, or never. Porcupine then orders only the
// acknowledged writes, a few at a time. The encoding accepts exactly the
// histories the interval model accepts; a test compares the two on random
// histories.
//
// Cost: porcupine remembers every set of operations it has placed, so a
// pair's check takes time and memory that grow with the square of its
// operations. On a 2-core machine, one pair with 20 clients: 10,000
// operations check in about 1 s and 180 MB, 30,000 in about 5 s and 1.3 GB.
package linearizability

import (
	"fmt"

	"github.com/artifactstate/artifactstate/internal/entityid"
)

// Key is one (user, artifact) pair: histories are kept and checked per pair.
type Key = entityid.Key

// Kind is an operation of the API on a pair.
type Kind uint8

// The operations, named after the API's endpoints.
const (
	SetRead        Kind = iota + 1 // setArtifactReadByUser
	AddToFeed                      // setArtifactAddedToUserFeed
	RemoveFromFeed                 // setArtifactRemovedFromUserFeed
	GetAllStates                   // getAllStates: both flags
	IsRead                         // isArtifactReadByUser: the read flag
	IsInFeed                       // isArtifactInUserFeed: the inFeed flag
)

var kindNames = map[Kind]string{
	SetRead: "setArtifactReadByUser", AddToFeed: "setArtifactAddedToUserFeed",
	RemoveFromFeed: "setArtifactRemovedFromUserFeed", GetAllStates: "getAllStates",
	IsRead: "isArtifactReadByUser", IsInFeed: "isArtifactInUserFeed",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// IsWrite reports whether k changes the state.
func (k Kind) IsWrite() bool { return k == SetRead || k == AddToFeed || k == RemoveFromFeed }

// valid reports whether k is one of the operations above.
func (k Kind) valid() bool { _, ok := kindNames[k]; return ok }

// State is a pair's state.
type State struct {
	Read   bool
	InFeed bool
}

func (s State) String() string { return fmt.Sprintf("read=%t inFeed=%t", s.Read, s.InFeed) }

// apply is the state after the write k.
func (s State) apply(k Kind) State {
	switch k {
	case SetRead:
		s.Read = true
	case AddToFeed:
		s.InFeed = true
	case RemoveFromFeed:
		s.InFeed = false
	}
	return s
}

// answers reports whether the read k may answer got in state s.
func (s State) answers(k Kind, got State) bool {
	switch k {
	case GetAllStates:
		return got == s
	case IsRead:
		return got.Read == s.Read
	case IsInFeed:
		return got.InFeed == s.InFeed
	}
	return false
}

// Output is what an operation answered. For getAllStates, State holds both
// flags; for isArtifactReadByUser only State.Read counts, for
// isArtifactInUserFeed only State.InFeed. For a write, State is the state
// the API reported after it, when StateReported.
type Output struct {
	State         State
	StateReported bool
}

// describe is op's answer for humans.
func describe(k Kind, out Output) string {
	switch {
	case k.IsWrite() && out.StateReported:
		return k.String() + " → " + out.State.String()
	case k.IsWrite():
		return k.String() + " → ok"
	case k == IsRead:
		return fmt.Sprintf("%s → %t", k, out.State.Read)
	case k == IsInFeed:
		return fmt.Sprintf("%s → %t", k, out.State.InFeed)
	}
	return k.String() + " → " + out.State.String()
}
