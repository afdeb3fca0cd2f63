package grpcapi

import (
	"testing"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/workflows"
)

// The proto enum CommandKind and workflows.CommandKinds name the same
// commands: a command added to one and not the other fails here.
func TestEveryCommandHasItsEnumValue(t *testing.T) {
	t.Parallel()
	for _, k := range workflows.CommandKinds {
		found := false
		for _, mapped := range commandKinds {
			found = found || mapped == k
		}
		if !found {
			t.Errorf("command %s has no value in the proto enum CommandKind", k)
		}
	}
	for v, name := range pb.CommandKind_name {
		if _, ok := commandKinds[pb.CommandKind(v)]; !ok && pb.CommandKind(v) != pb.CommandKind_COMMAND_KIND_UNSPECIFIED {
			t.Errorf("the proto enum's %s is no command of workflows.CommandKinds", name)
		}
	}
}

func TestUnknownCommandKindNamesEveryKind(t *testing.T) {
	t.Parallel()
	_, err := commandKind("kind", pb.CommandKind(42))
	want := "kind: must be COMMAND_KIND_SET_ARTIFACT_READ_BY_USER, COMMAND_KIND_SET_ARTIFACT_ADDED_TO_USER_FEED or " +
		"COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED, got unknown value 42"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
