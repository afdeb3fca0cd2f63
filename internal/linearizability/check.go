package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of checking one pair.
type Verdict string

// Verdicts.
const (
	Linearizable    Verdict = "linearizable"
	NotLinearizable Verdict = "not linearizable"
	// TimedOut: the search did not finish within Options.Timeout; no
	// violation was found, none was ruled out.
	TimedOut Verdict = "timed out"
)

// PairResult is the verdict on one pair's history.
type PairResult struct {
	UserID     string  `json:"userId"`
	ArtifactID int64   `json:"artifactId"`
	Verdict    Verdict `json:"verdict"`
	// Operations checked, of which Writes (UnknownWrites of unknown
	// outcome) and reads.
	Operations    int `json:"operations"`
	Writes        int `json:"writes"`
	UnknownWrites int `json:"unknownWrites"`
}

// Report is the result of Check.
type Report struct {
	Pairs []PairResult `json:"pairs"`
	// Visualization is the HTML file written for the pairs that failed
	// (empty when none did, or none was asked for).
	Visualization string `json:"visualization,omitempty"`
}

// OK reports whether every pair is linearizable.
func (r *Report) OK() bool {
	for _, p := range r.Pairs {
		if p.Verdict != Linearizable {
			return false
		}
	}
	return true
}

// Failed lists the pairs whose history is not linearizable or timed out.
func (r *Report) Failed() []PairResult {
	var out []PairResult
	for _, p := range r.Pairs {
		if p.Verdict != Linearizable {
			out = append(out, p)
		}
	}
	return out
}

// String is one line: pairs, operations, verdict.
func (r *Report) String() string {
	ops, unknown := 0, 0
	for _, p := range r.Pairs {
		ops += p.Operations
		unknown += p.UnknownWrites
	}
	verdict := "linearizable"
	if failed := r.Failed(); len(failed) > 0 {
		var names []string
		for _, p := range failed {
			names = append(names, fmt.Sprintf("(%q, %d) %s", p.UserID, p.ArtifactID, p.Verdict))
		}
		verdict = "NOT LINEARIZABLE: " + strings.Join(names, ", ")
	}
	s := fmt.Sprintf("%d pairs, %d operations (%d writes of unknown outcome): %s", len(r.Pairs), ops, unknown, verdict)
	if r.Visualization != "" {
		s += "; see " + r.Visualization
	}
	return s
}

// Options tune Check.
type Options struct {
	// Timeout bounds the search per pair (0: none). Checking is NP-hard in
	// general; histories with few writes of unknown outcome check fast.
	Timeout time.Duration
	// Visualization, when set, is the path of the HTML file (porcupine's
	// visualization) written when a pair is not linearizable or timed out:
	// it shows those pairs' histories and the longest linearizations found.
	Visualization string
}

// Check checks every pair of h on its own.
func Check(h History, o Options) (*Report, error) {
	keys := make([]Key, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(strings.Compare(a.UserID, b.UserID), cmp.Compare(a.ArtifactID, b.ArtifactID))
	})
	rep := &Report{}
	var failed []porcupine.Operation
	for _, k := range keys {
		ops := encode(k, h[k])
		res := PairResult{UserID: k.UserID, ArtifactID: k.ArtifactID, Operations: len(h[k])}
		for _, op := range h[k] {
			if op.Kind.IsWrite() {
				res.Writes++
				if op.Unknown {
					res.UnknownWrites++
				}
			}
		}
		switch porcupine.CheckOperationsTimeout(model, ops, o.Timeout) {
		case porcupine.Ok:
			res.Verdict = Linearizable
		case porcupine.Illegal:
			res.Verdict = NotLinearizable
		default:
			res.Verdict = TimedOut
		}
		if res.Verdict != Linearizable {
			failed = append(failed, ops...)
		}
		rep.Pairs = append(rep.Pairs, res)
	}
	if len(failed) > 0 && o.Visualization != "" {
		_, info := porcupine.CheckOperationsVerbose(model, failed, o.Timeout)
		if err := porcupine.VisualizePath(model, info, o.Visualization); err != nil {
			return rep, fmt.Errorf("write the linearizability visualization: %w", err)
		}
		rep.Visualization = o.Visualization
	}
	return rep, nil
}
