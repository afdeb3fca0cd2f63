package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/artifactstate/artifactstate/workflows"
)

// DefaultNewPairs and DefaultNewPairsConcurrency are the new-pairs load of
// issue 10: 200 new pairs, 32 clients.
const (
	DefaultNewPairs            = 200
	DefaultNewPairsConcurrency = 32
)

// NewPairIDs returns n pairs no earlier run wrote, tagged with tag (e.g. the
// seed): pair i is ("<name>-<tag>", i), the names cycling through names.
func NewPairIDs(names []string, tag string, n int) []Pair {
	out := make([]Pair, n)
	for i := range out {
		out[i] = Pair{UserID: names[i%len(names)] + "-" + tag, ArtifactID: int64(i)}
	}
	return out
}

// RunTag is a short tag for user IDs derived from seed.
func RunTag(seed uint64) string { return "t" + strconv.FormatUint(seed%(1<<40), 36) }

// NewPairs is read-after-write on new pairs (issue 10): for each pair,
// never written before, POST setArtifactAddedToUserFeed, and as soon as it
// answers {"success":true}, POST isArtifactInUserFeed, which must answer
// 200 {"answer":true}. A wrong answer is counted as an error of the read
// (ErrReadYourWrites).
type NewPairs struct {
	Client *Client
	Pairs  []Pair

	mu  sync.Mutex
	raw ReadAfterWrite
}

// Run works through the pairs with concurrency clients and reports, with
// the ReadAfterWrite section filled in.
func (s *NewPairs) Run(ctx context.Context, r *Runner, concurrency int) *Report {
	s.raw = ReadAfterWrite{Pairs: len(s.Pairs)}
	rep := r.Each(ctx, concurrency, len(s.Pairs), s.item)
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := s.raw
	raw.FailedReadsByStatus = nonEmpty(s.raw.FailedReadsByStatus)
	raw.Examples = slices.Clone(s.raw.Examples)
	rep.ReadAfterWrite = &raw
	return rep
}

func (s *NewPairs) item(ctx context.Context, i int, run func(Op) Result) {
	p := s.Pairs[i]
	interrupted := func(res Result) bool { return ctx.Err() != nil && errors.Is(res.Err, context.Canceled) }
	w := run(s.Client.WriteOp(workflows.SetArtifactAddedToUserFeed, p, i))
	if interrupted(w) {
		return
	}
	if !w.Acked {
		s.note(func(raw *ReadAfterWrite) {
			raw.WritesFailed++
			raw.example(p, "write: "+errorMessage(w.Err))
		})
		return
	}
	read := run(s.Client.ExpectAnswerOp(CallIsInFeed, p, true))
	if interrupted(read) {
		s.note(func(raw *ReadAfterWrite) { raw.Written++ })
		return
	}
	s.note(func(raw *ReadAfterWrite) {
		raw.Written++
		switch {
		case read.Err == nil:
			raw.ReadsOK++
		case errors.Is(read.Err, ErrReadYourWrites):
			raw.WrongAnswers++
			raw.example(p, "read answered false")
		default:
			if raw.FailedReadsByStatus == nil {
				raw.FailedReadsByStatus = map[int]int{}
			}
			raw.FailedReadsByStatus[read.Status]++
			raw.example(p, "read: "+errorMessage(read.Err))
		}
	})
}

func (s *NewPairs) note(f func(*ReadAfterWrite)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.raw)
}

// ReadAfterWrite is what the new-pairs scenario saw.
type ReadAfterWrite struct {
	// Pairs to write; Written were acknowledged, WritesFailed were not (their
	// read was not sent). Pairs left are those an interruption skipped.
	Pairs        int `json:"pairs"`
	Written      int `json:"written"`
	WritesFailed int `json:"writesFailed"`
	// Of the reads sent after an acknowledged write: ReadsOK answered true,
	// WrongAnswers answered false, FailedReadsByStatus did not answer 200
	// (0: no answer in time).
	ReadsOK             int         `json:"readsOk"`
	WrongAnswers        int         `json:"wrongAnswers"`
	FailedReadsByStatus map[int]int `json:"failedReadsByStatus,omitempty"`
	// Examples lists up to 20 pairs that failed, and how.
	Examples []string `json:"examples,omitempty"`
}

// FailedReads is the number of reads that did not answer 200.
func (r *ReadAfterWrite) FailedReads() int {
	n := 0
	for _, v := range r.FailedReadsByStatus {
		n += v
	}
	return n
}

// Failed reports whether a pair was not written, or not read back as
// written.
func (r *ReadAfterWrite) Failed() bool {
	return r.WritesFailed > 0 || r.WrongAnswers > 0 || r.FailedReads() > 0
}

func (r *ReadAfterWrite) example(p Pair, what string) {
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf("(%q, %d): %s", p.UserID, p.ArtifactID, what))
	}
}

func (r *ReadAfterWrite) writeText(w io.Writer) {
	verdict := "OK"
	if r.Failed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "read after write on new pairs: %s\n", verdict)
	fmt.Fprintf(w, "  %d pairs: %d writes acknowledged, %d not; %d reads answered true, %d false, %d failed",
		r.Pairs, r.Written, r.WritesFailed, r.ReadsOK, r.WrongAnswers, r.FailedReads())
	if len(r.FailedReadsByStatus) > 0 {
		var by []string
		for _, st := range slices.Sorted(maps.Keys(r.FailedReadsByStatus)) {
			label := strconv.Itoa(st)
			if st == 0 {
				label = "no answer"
			}
			by = append(by, fmt.Sprintf("%s: %d", label, r.FailedReadsByStatus[st]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintln(w)
	for _, e := range r.Examples {
		fmt.Fprintf(w, "    %s\n", e)
	}
}
