package ops

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/auth/authtest"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var down error
	srv := httptest.NewServer(Handler(Deps{
		Metrics: metrics.New("test", "abc"),
		Ready:   func(context.Context) error { return down },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	}))
	t.Cleanup(srv.Close)
	status, body := get(t, srv.URL+"/metrics")
	require.Equal(t, 200, status)
	require.Contains(t, body, "artifactstate_build_info")
	status, _ = get(t, srv.URL+"/readyz")
	require.Equal(t, 200, status)

	down = errors.New("dial tcp 10.1.2.3:7233: connection refused")
	status, body = get(t, srv.URL+"/readyz")
	require.Equal(t, 503, status)
	require.NotContains(t, body, "10.1.2.3", "/readyz names no internals")
	require.Contains(t, body, NotReady)
	require.Contains(t, logs.String(), "10.1.2.3", "the detail goes to the log")

	status, _ = get(t, srv.URL+"/debug/pprof/")
	require.Equal(t, 404, status, "pprof only when asked for")
	status, _ = get(t, srv.URL+"/codec/decode")
	require.Equal(t, 404, status, "no codec without encryption")
}

func codec(t *testing.T) *payloadcrypt.Codec {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	c, err := payloadcrypt.New(payloadcrypt.KeysFile{Current: "k1", Keys: map[string]string{"k1": base64.StdEncoding.EncodeToString(k)}})
	require.NoError(t, err)
	return c
}

// TestCodecServer decodes an encrypted payload through /codec/decode as the
// Temporal Web UI does: a CORS preflight from the UI's origin, then a POST
// with the operator's token.
func TestCodecServer(t *testing.T) {
	t.Parallel()
	c := codec(t)
	idp := authtest.New(t)
	a, err := auth.New(t.Context(), idp.Config(), auth.Options{})
	require.NoError(t, err)
	const ui = "https://temporal-ui.example"
	srv := httptest.NewServer(Handler(Deps{Ready: func(context.Context) error { return nil }, Codec: c,
		CodecCORSOrigins: []string{ui}, Authenticator: a, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)

	enc, err := payloadcrypt.DataConverter(c).ToPayload(map[string]string{"userId": "Mike"})
	require.NoError(t, err)
	body, err := json.Marshal(map[string]any{"payloads": []any{json.RawMessage(mustJSON(t, enc))}})
	require.NoError(t, err)

	pre, err := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
	require.NoError(t, err)
	pre.Header.Set("Origin", ui)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(pre)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, ui, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")

	decode := func(token, origin string) (int, http.Header, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		req.Header.Set("Origin", origin)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}
	status, _, out := decode("", ui)
	require.Equal(t, 401, status, out)
	status, _, out = decode(idp.Token("Mike", auth.ScopeService, time.Minute), ui)
	require.Equal(t, 403, status, "decrypting is for operators: %s", out)
	status, header, out := decode(idp.Token("ops", auth.ScopeAdmin, time.Minute), ui)
	require.Equal(t, 200, status, out)
	require.Equal(t, ui, header.Get("Access-Control-Allow-Origin"))
	var decoded struct {
		Payloads []json.RawMessage `json:"payloads"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &decoded))
	require.Len(t, decoded.Payloads, 1)
	var p commonpb.Payload
	require.NoError(t, protojsonUnmarshal(decoded.Payloads[0], &p))
	require.Equal(t, "json/plain", string(p.Metadata["encoding"]))
	require.JSONEq(t, `{"userId":"Mike"}`, string(p.Data))

	_, header, _ = decode(idp.Token("ops", auth.ScopeAdmin, time.Minute), "https://evil.example")
	require.Empty(t, header.Get("Access-Control-Allow-Origin"), "other origins get no CORS grant")
	require.False(t, strings.Contains(out, "binary/encrypted"))
}
