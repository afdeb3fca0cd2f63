package integration

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/httpserve"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/internal/testcerts"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/workflows"
)

// TestTLSEverywhere runs the worker and the API's Temporal client with mTLS
// against a frontend that requires client certificates, and the API itself
// over TLS: a request travels TLS from the caller to the API and mTLS from
// the API to Temporal; clients without a certificate are refused.
func TestTLSEverywhere(t *testing.T) {
	t.Parallel()
	temporalCA := testcerts.NewCA(t, "temporal")
	frontend, system := temporalCA.Server("frontend"), temporalCA.Client("temporal-system")
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{TLS: &devserver.TLS{
		CertFile: frontend.CertFile, KeyFile: frontend.KeyFile, CAFile: temporalCA.File,
		ClientCAFile: temporalCA.File, SystemCertFile: system.CertFile, SystemKeyFile: system.KeyFile,
	}})
	cfg := tt.Config()
	workerCert := temporalCA.Client("worker")
	cfg.Temporal.TLS = config.TLS{Enabled: true, CAFile: temporalCA.File, CertFile: workerCert.CertFile, KeyFile: workerCert.KeyFile}

	// Without a client certificate, or without TLS, Temporal refuses.
	for name, tlsCfg := range map[string]config.TLS{
		"TLS without a client certificate": {Enabled: true, CAFile: temporalCA.File},
		"plaintext":                        {},
	} {
		bad := cfg
		bad.Temporal.TLS = tlsCfg
		c := testenv.Client(t, bad, "intruder")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		cancel()
		require.Error(t, err, name)
	}

	c := testenv.Client(t, cfg, "mtls-worker")
	testenv.StartWorker(t, c, cfg, nil)

	apiCA := testcerts.NewCA(t, "api")
	apiCert := apiCA.Server("api")
	o := httpserve.APIOptions(cfg.API)
	o.Address, o.TLS = "127.0.0.1:0", config.ServerTLS{CertFile: apiCert.CertFile, KeyFile: apiCert.KeyFile}
	api, err := httpserve.New(server.NewHandler(cfg.API, server.Deps{
		Pairs: testenv.Pairs(c, cfg, nil), Logger: testenv.Logger()}), o)
	require.NoError(t, err)
	require.NoError(t, api.Start())
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	require.True(t, strings.HasPrefix(api.URL(), "https://"))

	pool, err := tlsfiles.CertPool(apiCA.File)
	require.NoError(t, err)
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	send := func(method, path, body string) string {
		req, err := http.NewRequest(method, api.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := https.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.NotNil(t, resp.TLS)
		return string(b)
	}
	require.Equal(t, `{"success":true}`, send("POST", "/artifactState/setArtifactReadByUser", pairBody(1, "Mike")))
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"Mike"}`,
		send("GET", "/artifactState/getAllStates?artifactId=1&userId=Mike", ""))
}

func writeKeys(t *testing.T) (string, *payloadcrypt.Codec) {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "keys.yaml")
	require.NoError(t, os.WriteFile(path, []byte("current: k1\nkeys:\n  k1: "+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	codec, err := payloadcrypt.Load(path)
	require.NoError(t, err)
	return path, codec
}

// TestEncryptedPayloads: with temporal.encryption.keysFile every payload in
// the entity's history is ciphertext; the service still reads and writes,
// folds a terminated entity's encrypted history, and the history replays
// with the keys (and only with them).
func TestEncryptedPayloads(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	_, codec := writeKeys(t)
	dc := payloadcrypt.DataConverter(codec)
	c, err := temporalclient.New(cfg.Temporal, testenv.Logger(), temporalclient.Options{Identity: "encrypting", DataConverter: dc})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	testenv.StartWorker(t, c, cfg, nil)
	opts := testenv.EntitiesOptions(cfg)
	opts.DataConverter = dc
	ents := entities.New(c, opts, testenv.Logger())
	api := testenv.StartAPIWith(t, ents, cfg)
	s := &stack{api: api, client: c}

	const user = "Secret Agent"
	body := pairBody(7, user)
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", body).body)
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", body).body)
	require.Equal(t, `{"artifactId":7,"artifactInUserFeed":true,"artifactRead":true,"userId":"Secret Agent"}`,
		s.get(t, "/artifactState/getAllStates", 7, user).body)

	key := entityid.Key{UserID: user, ArtifactID: 7}
	h := fetchHistory(t, c, key.WorkflowID())
	payloads := allPayloads(h.ProtoReflect())
	for _, p := range payloads {
		require.Equal(t, payloadcrypt.EncodingEncrypted, string(p.GetMetadata()["encoding"]))
		require.NotContains(t, string(p.GetData()), "Secret")
		require.NotContains(t, string(p.GetData()), "setArtifact")
	}
	require.GreaterOrEqual(t, len(payloads), 3, "the start input and two commands, at least")

	// The history replays with the keys, and not without them.
	replayer, err := histories.NewReplayerWith(dc)
	require.NoError(t, err)
	require.NoError(t, histories.Replay(replayer, testenv.Logger(), h))
	require.Error(t, histories.Replay(histories.NewReplayer(), testenv.Logger(), h))

	// A terminated entity is re-created from the state folded from its
	// encrypted history: only with the converter can the fold read it.
	require.NoError(t, c.TerminateWorkflow(context.Background(), key.WorkflowID(), "", "operator closed it"))
	_, err = entities.New(c, testenv.EntitiesOptions(cfg), testenv.Logger()).Apply(context.Background(), key,
		entities.Command{Kind: workflows.SetArtifactRemovedFromUserFeed})
	require.ErrorContains(t, err, "decode", "without the converter the fold cannot read the history")
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", body).body)
	require.Equal(t, `{"artifactId":7,"artifactInUserFeed":false,"artifactRead":true,"userId":"Secret Agent"}`,
		s.get(t, "/artifactState/getAllStates", 7, user).body)
}

// allPayloads collects every payload anywhere in m but search attributes,
// which Temporal must read (they are not encoded: see README "Security").
func allPayloads(m protoreflect.Message) []*commonpb.Payload {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		return []*commonpb.Payload{p}
	}
	var out []*commonpb.Payload
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "search_attributes":
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				out = append(out, allPayloads(v.List().Get(i).Message())...)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				out = append(out, allPayloads(mv.Message())...)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			out = append(out, allPayloads(v.Message())...)
		}
		return true
	})
	return out
}

func fetchHistory(t *testing.T, c client.Client, workflowID string) *historypb.History {
	t.Helper()
	h := &historypb.History{}
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}
