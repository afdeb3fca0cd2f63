package faultload

import (
	"testing"
	"time"
)

func TestUnion(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, c := range []struct {
		name           string
		spans          []Span
		total, longest float64
	}{
		{"none", nil, 0, 0},
		{"one", []Span{{at(1), at(3)}}, 2, 2},
		{"overlapping, out of order", []Span{{at(2), at(5)}, {at(1), at(3)}, {at(4), at(4.5)}}, 4, 4},
		{"apart", []Span{{at(0), at(1)}, {at(10), at(13)}, {at(5), at(6)}}, 5, 3},
		{"touching", []Span{{at(0), at(1)}, {at(1), at(2)}}, 2, 2},
	} {
		total, longest := Union(c.spans)
		if total != c.total || longest != c.longest {
			t.Errorf("%s: union = %v, %v; want %v, %v", c.name, total, longest, c.total, c.longest)
		}
	}
}
