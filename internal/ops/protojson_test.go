package ops

import (
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func mustJSON(t *testing.T, p *commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(p)
	require.NoError(t, err)
	return b
}

func protojsonUnmarshal(b []byte, p *commonpb.Payload) error { return protojson.Unmarshal(b, p) }
