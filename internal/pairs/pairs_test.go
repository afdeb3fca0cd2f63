package pairs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

// downReadModel is a read model Cassandra no longer answers for.
type downReadModel struct{}

func (downReadModel) Get(context.Context, string, int64) (readmodel.Row, bool, error) {
	return readmodel.Row{}, false, readmodel.ErrUnavailable
}

func (downReadModel) GetMany(context.Context, string, []int64) (map[int64]readmodel.Row, error) {
	return nil, readmodel.ErrUnavailable
}

func (downReadModel) Feed(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, readmodel.ErrUnavailable
}

func (downReadModel) ReadArtifacts(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, readmodel.ErrUnavailable
}

// A failure on one pair names the pair, also in a batch, where the failed
// item still says which pair it is.
func TestFailuresNameTheirPair(t *testing.T) {
	t.Parallel()
	s := pairs.New(entitiestest.New(), downReadModel{}, time.Second)
	keys := []entityid.Key{{UserID: "Mike", ArtifactID: 1}, {UserID: "Ann", ArtifactID: 2}}
	results, err := s.BatchGet(t.Context(), keys, pairs.Eventual)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		var onPair *pairs.Error
		if r.State.Key != keys[i] || !errors.As(r.Err, &onPair) || onPair.Key != keys[i] || !errors.Is(r.Err, readmodel.ErrUnavailable) {
			t.Errorf("result %d: %+v, %v; want pair %v unavailable", i, r.State, r.Err, keys[i])
		}
	}
	v := uint64(7)
	_, err = s.Apply(t.Context(), keys[0], entities.Command{Kind: workflows.SetArtifactReadByUser, IfVersion: &v})
	var mismatch *entities.VersionMismatchError
	var onPair *pairs.Error
	if !errors.As(err, &mismatch) || !errors.As(err, &onPair) || onPair.Key != keys[0] {
		t.Fatalf("Apply at another version: %v", err)
	}
}

// Every call is bounded by the request timeout.
func TestCallsAreBoundedByTheRequestTimeout(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	e.HoldReads(make(chan struct{})) // never answers
	s := pairs.New(e, nil, 50*time.Millisecond)
	started := time.Now()
	_, err := s.Get(context.Background(), entityid.Key{UserID: "Mike", ArtifactID: 1}, pairs.Strong)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(started) > 5*time.Second {
		t.Fatalf("a read held forever ended with %v after %v", err, time.Since(started))
	}
	if _, err := s.Get(context.Background(), entityid.Key{UserID: "Mike", ArtifactID: 1}, pairs.Eventual); !errors.Is(err, pairs.ErrReadModelNotConfigured) {
		t.Fatalf("an eventual read without read model: %v", err)
	}
}
