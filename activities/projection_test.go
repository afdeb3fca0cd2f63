package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/internal/projection"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// stampedRow is a read model holding one row's stamp (or none), for plan:
// it answers Stamp and counts the calls; nothing is written through it.
type stampedRow struct {
	stamp readmodel.Stamp
	found bool
	err   error
	reads int
}

func (r *stampedRow) Stamp(context.Context, string, int64) (readmodel.Stamp, bool, error) {
	r.reads++
	return r.stamp, r.found, r.err
}

func (r *stampedRow) Project(context.Context, readmodel.Projection) error {
	return errors.New("plan must not write")
}

// plan decides the write timestamp and the deletes of a projection; each
// case says why its answer is right.
func TestPlan(t *testing.T) {
	t.Parallel()
	changed := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	const clock = int64(1_764_583_200_000_000) // the entity's projection clock, µs
	unavailable := errors.New("cassandra down")
	input := func(read, inFeed bool, timestamp int64, previous *projection.Flags) projection.Input {
		return projection.Input{UserID: "Mike", ArtifactID: 7, ArtifactRead: read, ArtifactInUserFeed: inFeed,
			Version: 5, ChangedAt: changed, Timestamp: timestamp, Previous: previous}
	}
	for _, c := range []struct {
		name   string
		in     projection.Input
		row    stampedRow
		reads  int
		want   readmodel.Projection // Row is always the input's
		result projection.Result
		err    error
	}{
		{
			name: "history versions 1 and 2 (no timestamp): the version is the timestamp and every false flag is deleted, without reading the row",
			in:   input(true, false, 0, nil),
			want: readmodel.Projection{Timestamp: 5, RemoveFromFeed: true}, result: projection.Result{Timestamp: 5},
		},
		{
			name: "versions 1 and 2 delete every false flag, whatever the previous projection wrote",
			in:   input(false, false, 0, &projection.Flags{Read: true, InFeed: true}),
			want: readmodel.Projection{Timestamp: 5, RemoveFromFeed: true, RemoveFromRead: true}, result: projection.Result{Timestamp: 5},
		},
		{
			name: "a flag that went from true to false is deleted (a tombstone only then)",
			in:   input(false, false, clock, &projection.Flags{Read: true, InFeed: true}),
			want: readmodel.Projection{Timestamp: clock, RemoveFromFeed: true, RemoveFromRead: true}, result: projection.Result{Timestamp: clock},
		},
		{
			name: "a flag that was already false is not deleted again",
			in:   input(true, false, clock, &projection.Flags{Read: false, InFeed: false}),
			want: readmodel.Projection{Timestamp: clock}, result: projection.Result{Timestamp: clock},
		},
		{
			name: "a flag that stays true needs no delete",
			in:   input(true, true, clock, &projection.Flags{Read: true, InFeed: true}),
			want: readmodel.Projection{Timestamp: clock}, result: projection.Result{Timestamp: clock},
		},
		{
			name:  "the run's first projection reads the row: none there, nothing to delete, the clock stands",
			in:    input(false, false, clock, nil),
			reads: 1,
			want:  readmodel.Projection{Timestamp: clock}, result: projection.Result{Timestamp: clock},
		},
		{
			name:  "the run's first projection deletes what the older row holds and the new state lacks",
			in:    input(false, true, clock, nil),
			row:   stampedRow{found: true, stamp: readmodel.Stamp{ArtifactRead: true, ArtifactInUserFeed: true, Timestamp: clock - 1}},
			reads: 1,
			want:  readmodel.Projection{Timestamp: clock, RemoveFromRead: true}, result: projection.Result{Timestamp: clock},
		},
		{
			name:  "a row written at the entity's clock would win the tie: the write goes just above it",
			in:    input(true, false, clock, nil),
			row:   stampedRow{found: true, stamp: readmodel.Stamp{ArtifactRead: true, Timestamp: clock}},
			reads: 1,
			want:  readmodel.Projection{Timestamp: clock + 1}, result: projection.Result{Timestamp: clock + 1, Adjusted: true},
		},
		{
			name:  "a row written in the future (by hand, or a clock ahead) is outranked and the adjustment reported",
			in:    input(false, false, clock, nil),
			row:   stampedRow{found: true, stamp: readmodel.Stamp{ArtifactInUserFeed: true, Timestamp: clock + 1_000_000}},
			reads: 1,
			want:  readmodel.Projection{Timestamp: clock + 1_000_001, RemoveFromFeed: true}, result: projection.Result{Timestamp: clock + 1_000_001, Adjusted: true},
		},
		{
			name:  "a row that cannot be read fails the plan with the read model's error (Temporal retries it)",
			in:    input(true, true, clock, nil),
			row:   stampedRow{err: unavailable},
			reads: 1,
			err:   unavailable,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			row := c.row
			p := NewProjection(&row, nil)
			got, res, err := p.plan(t.Context(), c.in)
			if row.reads != c.reads {
				t.Errorf("read the row %d times, want %d", row.reads, c.reads)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err != nil {
				return
			}
			c.want.Row = readmodel.Row{UserID: "Mike", ArtifactID: 7, ArtifactRead: c.in.ArtifactRead,
				ArtifactInUserFeed: c.in.ArtifactInUserFeed, Version: 5, ChangedAt: changed}
			if got != c.want {
				t.Errorf("write = %+v\nwant    %+v", got, c.want)
			}
			if res != c.result {
				t.Errorf("result = %+v, want %+v", res, c.result)
			}
		})
	}
}
