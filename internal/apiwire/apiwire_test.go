package apiwire

import (
	"testing"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
)

func TestServiceNameIsTheProtoService(t *testing.T) {
	t.Parallel()
	if ServiceName != pb.ArtifactStateService_ServiceDesc.ServiceName {
		t.Fatalf("ServiceName %q, the proto's service %q", ServiceName, pb.ArtifactStateService_ServiceDesc.ServiceName)
	}
}

// A client tells the outcomes apart by reason: each reason names one.
func TestEveryReasonNamesOneOutcome(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, o := range Outcomes {
		if o.Reason == "" || o.HTTPCode == "" || o.HTTPStatus < 400 {
			t.Errorf("incomplete outcome %+v", o)
		}
		if seen[o.Reason] {
			t.Errorf("reason %s names two outcomes", o.Reason)
		}
		seen[o.Reason] = true
		if got, ok := ByReason(o.Reason); !ok || got != o {
			t.Errorf("ByReason(%s) = %+v, %t", o.Reason, got, ok)
		}
	}
	if _, ok := ByReason("NO_SUCH_REASON"); ok {
		t.Error("an unknown reason has an outcome")
	}
}

func TestCommandKindEnum(t *testing.T) {
	t.Parallel()
	for kind, want := range map[string]string{
		"setArtifactReadByUser":          "COMMAND_KIND_SET_ARTIFACT_READ_BY_USER",
		"setArtifactRemovedFromUserFeed": "COMMAND_KIND_SET_ARTIFACT_REMOVED_FROM_USER_FEED",
	} {
		if got := CommandKindEnum(kind); got != want {
			t.Errorf("CommandKindEnum(%s) = %s, want %s", kind, got, want)
		}
	}
}
