package payloadcrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(k)
}

type input struct {
	UserID     string `json:"userId"`
	ArtifactID int64  `json:"artifactId"`
}

func TestPayloadsAreEncryptedAndDecrypted(t *testing.T) {
	t.Parallel()
	c, err := New(KeysFile{Current: "k1", Keys: map[string]string{"k1": newKey(t)}})
	require.NoError(t, err)
	dc := DataConverter(c)
	p, err := dc.ToPayload(input{UserID: "Mike Smith", ArtifactID: 42})
	require.NoError(t, err)
	require.Equal(t, EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	require.Equal(t, "k1", string(p.Metadata[MetadataKeyID]))
	require.False(t, bytes.Contains(p.Data, []byte("Mike")), "the user ID must not be readable")
	require.False(t, bytes.Contains(p.Data, []byte("json/plain")), "nor the inner metadata")
	var got input
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, input{UserID: "Mike Smith", ArtifactID: 42}, got)

	// The same value encrypts differently each time (random nonce).
	p2, err := dc.ToPayload(input{UserID: "Mike Smith", ArtifactID: 42})
	require.NoError(t, err)
	require.NotEqual(t, p.Data, p2.Data)
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t), newKey(t)
	old, err := New(KeysFile{Current: "k1", Keys: map[string]string{"k1": k1}})
	require.NoError(t, err)
	written, err := DataConverter(old).ToPayload("written under k1")
	require.NoError(t, err)

	rotated, err := New(KeysFile{Current: "k2", Keys: map[string]string{"k1": k1, "k2": k2}})
	require.NoError(t, err)
	var s string
	require.NoError(t, DataConverter(rotated).FromPayload(written, &s), "old payloads stay readable")
	require.Equal(t, "written under k1", s)
	fresh, err := DataConverter(rotated).ToPayload("new")
	require.NoError(t, err)
	require.Equal(t, "k2", string(fresh.Metadata[MetadataKeyID]))

	// A process that lost k1 cannot read k1's payloads, and says why.
	onlyK2, err := New(KeysFile{Current: "k2", Keys: map[string]string{"k2": k2}})
	require.NoError(t, err)
	require.ErrorIs(t, DataConverter(onlyK2).FromPayload(written, &s), ErrUnknownKey)
}

func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	c, err := New(KeysFile{Current: "a", Keys: map[string]string{"a": k, "b": k}})
	require.NoError(t, err)
	enc, err := c.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	require.NoError(t, err)

	flipped := &commonpb.Payload{Metadata: enc[0].Metadata, Data: bytes.Clone(enc[0].Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	_, err = c.Decode([]*commonpb.Payload{flipped})
	require.ErrorContains(t, err, "authentication failed")

	// Relabelled as encrypted with key b (the same bytes): refused, the key
	// ID is authenticated.
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{}, Data: enc[0].Data}
	for k, v := range enc[0].Metadata {
		relabelled.Metadata[k] = v
	}
	relabelled.Metadata[MetadataKeyID] = []byte("b")
	_, err = c.Decode([]*commonpb.Payload{relabelled})
	require.Error(t, err)
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	t.Parallel()
	c, err := New(KeysFile{Current: "k1", Keys: map[string]string{"k1": newKey(t)}})
	require.NoError(t, err)
	plain, err := converter.GetDefaultDataConverter().ToPayload("written before encryption")
	require.NoError(t, err)
	var s string
	require.NoError(t, DataConverter(c).FromPayload(plain, &s))
	require.Equal(t, "written before encryption", s)
}

func TestLoadChecksTheKeysFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(body string) string {
		path := filepath.Join(dir, "keys.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		return path
	}
	k := newKey(t)
	c, err := Load(write("current: k1\nkeys:\n  k1: " + k + "\n"))
	require.NoError(t, err)
	require.Equal(t, "k1", c.CurrentKeyID())
	for body, want := range map[string]string{
		"current: k2\nkeys:\n  k1: " + k + "\n":    "current key",
		"current: k1\nkeys:\n  k1: c2hvcnQ=\n":     "32 bytes",
		"current: k1\nkeys:\n  'a b': " + k + "\n": "key ID",
		"current: k1\nkey:\n  k1: " + k + "\n":     "not found",
	} {
		_, err := Load(write(body))
		require.ErrorContains(t, err, want)
	}
}
