package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
)

// hotPairs drives readers and writers on a few pairs at once through the API
// at url for duration, records every call, and checks the history.
func hotPairs(t *testing.T, url string, pairs, readers, writers int, duration time.Duration) (*linearizability.Report, []*loadtest.Report) {
	t.Helper()
	client, err := loadtest.NewClient(url, loadtest.ClientOptions{MaxConns: pairs * (readers + writers), Timeout: time.Minute})
	require.NoError(t, err)
	defer client.Close()
	tag := loadtest.RunTag(uint64(time.Now().UnixNano()))
	rec := linearizability.NewRecorder()
	reports := make([]*loadtest.Report, pairs)
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hot := &loadtest.HotPair{Client: client, Pair: loadtest.Pair{UserID: "hot-" + tag, ArtifactID: int64(i)},
				Readers: readers, Writers: writers, Recorder: rec}
			hot.Prepare()
			reports[i] = (&loadtest.Runner{}).Closed(context.Background(), hot.Workers(), duration, hot.Next)
		}()
	}
	wg.Wait()
	lin, err := linearizability.Check(rec.History(), linearizability.Options{Timeout: 2 * time.Minute,
		Visualization: filepath.Join(t.TempDir(), "linearizability.html")})
	require.NoError(t, err)
	t.Logf("history: %s", lin)
	return lin, reports
}

// Concurrent writes and strong reads on a few hot pairs, through the HTTP
// API of the real stack: the whole history is linearizable, every call
// answered (a write that timed out counts as maybe-applied).
func TestHotPairsAreLinearizable(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) { c.API.RequestTimeout = 30 * time.Second })
	lin, reports := hotPairs(t, s.api.URL, 3, 4, 2, 8*time.Second)
	require.True(t, lin.OK(), "%s", lin)
	for _, rep := range reports {
		var text bytes.Buffer
		require.NoError(t, rep.WriteText(&text))
		t.Log("\n" + text.String())
		require.Zero(t, rep.Total.NonRetriable, "%v", rep.Total.ErrorsByMessage)
		require.Positive(t, rep.Total.OK)
	}
}

// The same load through a proxy that answers reads from a cache of up to
// 300 ms: the checker must call such stale reads what they are. (This is
// how we know TestHotPairsAreLinearizable can fail.)
func TestStaleReadsFailTheLinearizabilityCheck(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) { c.API.RequestTimeout = 30 * time.Second })
	proxy := httptest.NewServer(&staleReads{next: s.api.URL, ttl: 300 * time.Millisecond, cache: map[string]cached{}})
	defer proxy.Close()
	lin, _ := hotPairs(t, proxy.URL, 2, 4, 2, 6*time.Second)
	require.False(t, lin.OK(), "reads up to 300 ms stale passed the linearizability check")
	require.NotEmpty(t, lin.Failed())
}

// staleReads forwards to next, answering reads (POSTs to the original
// contract's is*/getAllStates) from a cache for ttl: a broken read path.
type staleReads struct {
	next  string
	ttl   time.Duration
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	at     time.Time
	status int
	body   []byte
}

func (p *staleReads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	read := !strings.Contains(r.URL.Path, "/set")
	key := r.URL.Path + "?" + r.URL.RawQuery + string(body)
	if read {
		p.mu.Lock()
		c, ok := p.cache[key]
		p.mu.Unlock()
		if ok && time.Since(c.at) < p.ttl {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(c.status)
			_, _ = w.Write(c.body)
			return
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.next+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if read && resp.StatusCode == http.StatusOK {
		p.mu.Lock()
		p.cache[key] = cached{at: time.Now(), status: resp.StatusCode, body: out}
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}
