package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/artifactstate/artifactstate/workflows"
)

type outcome uint8

const (
	acknowledged outcome = iota
	rejected
	unknown
)

type write struct {
	kind         workflows.CommandKind
	issuer       int
	seq          int
	issued, done time.Time
	outcome      outcome
}

// Ledger records every write issued during the run: its pair, command,
// issuer (the virtual user or worker that sent it, whose writes are
// sequential), its order among the issuer's writes, when it was sent and
// when it was answered, and its outcome:
//
//   - acknowledged: 200 {"success":true}; the service has persisted it;
//   - rejected: a 4xx answer; it was never applied;
//   - unknown: anything else (503, 504, 500, no answer, interrupted); it may
//     or may not have been applied, now or later.
//
// The final state every pair with an acknowledged write must be in:
//
//   - artifactRead is true if a setArtifactReadByUser was acknowledged.
//     Otherwise it is not checked, unless the target is known to be fresh
//     (VerifyOptions.AssumeFresh): then it must be false, or either value
//     if a setArtifactReadByUser had an unknown outcome.
//   - artifactInUserFeed is the effect of the last feed command (added or
//     removed) applied to the pair. Writes are linearizable: a write
//     acknowledged before another was sent is applied before it. So the last
//     one applied is either an acknowledged feed write that no other
//     acknowledged feed write certainly follows (a later write of the same
//     issuer, or one sent after it was acknowledged), or a feed write of
//     unknown outcome. With one issuer per pair that is exactly the effect of
//     its last acknowledged feed command; when several issuers wrote the pair
//     concurrently their order is undefined, and the value of the last feed
//     command of any of them is accepted (unless its write was acknowledged
//     before another issuer's write was sent). With no acknowledged feed
//     write the flag is not checked (or, with AssumeFresh, must be false
//     or the effect of a feed write of unknown outcome).
//
// Pairs the run did not write are not checked: the target may hold state
// from earlier runs.
//
// Safe for concurrent use.
type Ledger struct {
	mu    sync.Mutex
	pairs map[Pair][]write
	seq   map[int]int
	acked int
	unk   int
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{pairs: map[Pair][]write{}, seq: map[int]int{}}
}

// Record files a write of kind on p by issuer, sent at issued and answered
// (or given up) at done, with result res. An issuer's writes must be
// recorded in the order it sent them.
func (l *Ledger) Record(p Pair, kind workflows.CommandKind, issuer int, issued, done time.Time, res Result) {
	o := unknown
	switch {
	case res.Acked:
		o = acknowledged
	case res.Status >= 400 && res.Status < 500:
		o = rejected
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq[issuer]++
	l.pairs[p] = append(l.pairs[p], write{kind: kind, issuer: issuer, seq: l.seq[issuer], issued: issued, done: done, outcome: o})
	switch o {
	case acknowledged:
		l.acked++
	case unknown:
		l.unk++
	}
}

// Expectation is what the final state of a pair may be: each flag's
// acceptable values.
type Expectation struct {
	Pair   Pair
	Read   []bool
	InFeed []bool
	// UnknownWrites counts the pair's writes of unknown outcome: they may
	// still land after the check.
	UnknownWrites int
}

// Allows reports whether s is an acceptable final state.
func (e Expectation) Allows(s PairState) bool {
	return slices.Contains(e.Read, s.ArtifactRead) && slices.Contains(e.InFeed, s.ArtifactInUserFeed)
}

func (e Expectation) String() string {
	return "read=" + oneOf(e.Read) + " inFeed=" + oneOf(e.InFeed)
}

func oneOf(vs []bool) string {
	if len(vs) == 1 {
		return fmt.Sprint(vs[0])
	}
	return "any"
}

// Expectations returns what every pair with an acknowledged write must end
// in, by user then artifact (see the rules above).
func (l *Ledger) Expectations(assumeFresh bool) []Expectation {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Expectation
	for p, ws := range l.pairs {
		if e, ok := expect(p, ws, assumeFresh); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Expectation) int {
		if c := strings.Compare(a.Pair.UserID, b.Pair.UserID); c != 0 {
			return c
		}
		return cmp.Compare(a.Pair.ArtifactID, b.Pair.ArtifactID)
	})
	return out
}

func expect(p Pair, ws []write, assumeFresh bool) (Expectation, bool) {
	var (
		anyAcked, readAcked, readUnknown bool
		unknowns                         int
		feedAcked                        []write
		unknownFeed                      []bool // values of feed writes of unknown outcome
		lastIssued                       time.Time
		lastSeq                          = map[int]int{}
	)
	for _, w := range ws {
		read := w.kind == workflows.SetArtifactReadByUser
		switch w.outcome {
		case acknowledged:
			anyAcked = true
			if read {
				readAcked = true
				continue
			}
			feedAcked = append(feedAcked, w)
			if w.issued.After(lastIssued) {
				lastIssued = w.issued
			}
			lastSeq[w.issuer] = max(lastSeq[w.issuer], w.seq)
		case unknown:
			unknowns++
			if read {
				readUnknown = true
				continue
			}
			unknownFeed = appendUnique(unknownFeed, feedValue(w.kind))
		}
	}
	if !anyAcked {
		return Expectation{}, false
	}
	e := Expectation{Pair: p, UnknownWrites: unknowns}
	switch {
	case readAcked:
		e.Read = []bool{true}
	case !assumeFresh || readUnknown:
		e.Read = []bool{false, true}
	default:
		e.Read = []bool{false}
	}
	switch {
	case len(feedAcked) > 0:
		// The acknowledged feed writes no other acknowledged one certainly
		// follows, and those of unknown outcome.
		for _, w := range feedAcked {
			if w.seq == lastSeq[w.issuer] && !lastIssued.After(w.done) {
				e.InFeed = appendUnique(e.InFeed, feedValue(w.kind))
			}
		}
		for _, v := range unknownFeed {
			e.InFeed = appendUnique(e.InFeed, v)
		}
	case assumeFresh:
		e.InFeed = appendUnique(unknownFeed, false)
	default:
		e.InFeed = []bool{false, true}
	}
	slices.SortFunc(e.InFeed, compareBools)
	return e, true
}

func feedValue(k workflows.CommandKind) bool { return k == workflows.SetArtifactAddedToUserFeed }

func appendUnique(vs []bool, v bool) []bool {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(vs, v)
}

func compareBools(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// Check outcomes.
const (
	CheckOK            = "ok"
	CheckFailed        = "failed"
	CheckNotConfigured = "not configured"
	CheckSkipped       = "skipped"
	CheckInterrupted   = "interrupted"
)

// maxExamples bounds the mismatches listed per check.
const maxExamples = 20

// Verification is the result of Verify.
type Verification struct {
	// Pairs is how many pairs had an acknowledged write (those checked).
	Pairs              int `json:"pairs"`
	AcknowledgedWrites int `json:"acknowledgedWrites"`
	UnknownWrites      int `json:"unknownWrites"`
	// AssumeFresh: flags no write set were expected false.
	AssumeFresh bool `json:"assumeFresh,omitempty"`
	// API is the check through the strongly consistent getAllStates.
	API Check `json:"api"`
	// ReadModel is the check through the eventual read (Cassandra).
	ReadModel Check `json:"readModel"`
}

// Check is the result of reading every pair one way.
type Check struct {
	Status string `json:"status"`
	// Checked pairs, of which Mismatches had another state than expected
	// and Unreadable could not be read (after retries).
	Checked    int `json:"checked"`
	Mismatches int `json:"mismatches"`
	Unreadable int `json:"unreadable"`
	// Examples lists up to 20 of the mismatched or unreadable pairs.
	Examples []Mismatch `json:"examples,omitempty"`
	// ConvergedAfterSeconds (read model): from the end of the load until
	// every pair read as expected.
	ConvergedAfterSeconds float64 `json:"convergedAfterSeconds,omitempty"`
	Detail                string  `json:"detail,omitempty"`
}

// Mismatch is a pair whose state is not as expected.
type Mismatch struct {
	UserID     string `json:"userId"`
	ArtifactID int64  `json:"artifactId"`
	Want       string `json:"want"`
	Got        string `json:"got"`
}

// Failed reports whether a check failed (an interrupted or skipped check,
// or a service without read model, is not a failure).
func (v *Verification) Failed() bool {
	return v.API.Status == CheckFailed || v.ReadModel.Status == CheckFailed
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Concurrency of the reads (default 16).
	Concurrency int
	// ConvergeTimeout bounds the wait for the read model (default 2m).
	ConvergeTimeout time.Duration
	// PollInterval separates rounds of read-model reads (default 500ms).
	PollInterval time.Duration
	// AssumeFresh: the target held no state for the pairs before the run,
	// so flags no acknowledged write set must be false.
	AssumeFresh bool
	// SkipReadModel skips the read-model check.
	SkipReadModel bool
	// LoadEnded is when the load stopped: the read model's convergence time
	// counts from it (default: when Verify starts).
	LoadEnded time.Time
}

// Verify checks that the final state of every pair with an acknowledged
// write in l is as expected (see Ledger): first through the API's strong
// read (getAllStates), then through the read model's eventual read, polled
// until every pair reads the state the strong read answered (or, for pairs
// that did not match, the expectation) or ConvergeTimeout passes. A service
// without read model gets ReadModel.Status "not configured".
func Verify(ctx context.Context, c *Client, l *Ledger, o VerifyOptions) *Verification {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.ConvergeTimeout <= 0 {
		o.ConvergeTimeout = 2 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.LoadEnded.IsZero() {
		o.LoadEnded = time.Now()
	}
	exps := l.Expectations(o.AssumeFresh)
	l.mu.Lock()
	v := &Verification{Pairs: len(exps), AcknowledgedWrites: l.acked, UnknownWrites: l.unk, AssumeFresh: o.AssumeFresh}
	l.mu.Unlock()

	// The strong read of every pair.
	observed := make([]*PairState, len(exps))
	problems := make([]*Mismatch, len(exps))
	forEach(ctx, o.Concurrency, len(exps), func(i int) {
		e := exps[i]
		s, res := strongRead(ctx, c, e.Pair, o.LoadEnded.Add(o.ConvergeTimeout))
		switch {
		case res.Err != nil && ctx.Err() != nil:
		case res.Err != nil:
			problems[i] = &Mismatch{UserID: e.Pair.UserID, ArtifactID: e.Pair.ArtifactID, Want: e.String(), Got: "error: " + errorMessage(res.Err)}
		default:
			observed[i] = &s
			if !e.Allows(s) {
				problems[i] = &Mismatch{UserID: e.Pair.UserID, ArtifactID: e.Pair.ArtifactID, Want: e.String(), Got: s.String()}
			}
		}
	})
	v.API.Checked = len(exps)
	for i, m := range problems {
		if m == nil {
			continue
		}
		if observed[i] == nil {
			v.API.Unreadable++
		} else {
			v.API.Mismatches++
		}
		if len(v.API.Examples) < maxExamples {
			v.API.Examples = append(v.API.Examples, *m)
		}
	}
	switch {
	case ctx.Err() != nil:
		v.API.Status = CheckInterrupted
	case v.API.Mismatches > 0 || v.API.Unreadable > 0:
		v.API.Status = CheckFailed
	default:
		v.API.Status = CheckOK
	}

	switch {
	case o.SkipReadModel:
		v.ReadModel.Status = CheckSkipped
	case ctx.Err() != nil:
		v.ReadModel.Status = CheckInterrupted
	default:
		// The read model must converge to what the entity answered, when
		// that was right and no write of unknown outcome may still change
		// it; otherwise to the expectation.
		wants := make([]func(PairState) bool, len(exps))
		labels := make([]string, len(exps))
		for i, e := range exps {
			if s := observed[i]; s != nil && problems[i] == nil && e.UnknownWrites == 0 {
				wants[i] = func(got PairState) bool { return got == *s }
				labels[i] = s.String()
			} else {
				wants[i] = e.Allows
				labels[i] = e.String()
			}
		}
		v.ReadModel = checkReadModel(ctx, c, exps, wants, labels, o)
	}
	return v
}

// strongRead is getAllStates (POST), retried while the answer is 503, 504
// or no answer in time, until the deadline: a service still working off a
// backlog after an overload answers reads with 504 for a while.
func strongRead(ctx context.Context, c *Client, p Pair, deadline time.Time) (PairState, Result) {
	backoff := 100 * time.Millisecond
	for {
		s, res := c.AllStates(ctx, p, false)
		if res.Err == nil || !res.Retriable() || time.Now().After(deadline) || !pause(ctx, backoff) {
			return s, res
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// pause waits d, or less if ctx is done (then it reports false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func checkReadModel(ctx context.Context, c *Client, exps []Expectation, wants []func(PairState) bool, labels []string, o VerifyOptions) Check {
	ch := Check{Checked: len(exps)}
	if len(exps) == 0 {
		ch.Status = CheckOK
		return ch
	}
	// Is there a read model at all?
	if _, res := c.Eventual(ctx, exps[0].Pair); ReadModelNotConfigured(res.Err) {
		ch.Status = CheckNotConfigured
		return ch
	}
	deadline := time.Now().Add(o.ConvergeTimeout)
	pending := make([]int, len(exps))
	for i := range pending {
		pending[i] = i
	}
	last := make([]string, len(exps)) // what each pending pair last read
	for {
		matched := make([]bool, len(pending))
		forEach(ctx, o.Concurrency, len(pending), func(j int) {
			i := pending[j]
			s, res := c.Eventual(ctx, exps[i].Pair)
			switch {
			case res.Err != nil:
				last[i] = "error: " + errorMessage(res.Err)
			case wants[i](s):
				matched[j] = true
			default:
				last[i] = s.String()
			}
		})
		var still []int
		for j, i := range pending {
			if !matched[j] {
				still = append(still, i)
			}
		}
		pending = still
		if len(pending) == 0 {
			ch.Status = CheckOK
			ch.ConvergedAfterSeconds = time.Since(o.LoadEnded).Seconds()
			return ch
		}
		if ctx.Err() != nil {
			ch.Status = CheckInterrupted
			return ch
		}
		if !time.Now().Before(deadline) {
			break
		}
		if !pause(ctx, min(o.PollInterval, time.Until(deadline))) {
			ch.Status = CheckInterrupted
			return ch
		}
	}
	ch.Status = CheckFailed
	ch.Detail = fmt.Sprintf("%d pairs did not converge within %v", len(pending), o.ConvergeTimeout)
	for _, i := range pending {
		if strings.HasPrefix(last[i], "error: ") {
			ch.Unreadable++
		} else {
			ch.Mismatches++
		}
		if len(ch.Examples) < maxExamples {
			ch.Examples = append(ch.Examples, Mismatch{UserID: exps[i].Pair.UserID, ArtifactID: exps[i].Pair.ArtifactID, Want: labels[i], Got: last[i]})
		}
	}
	return ch
}

// forEach runs fn(0..n-1) on up to workers goroutines; it stops handing
// out work when ctx is done.
func forEach(ctx context.Context, workers, n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
}

func (v *Verification) writeText(w io.Writer) {
	verdict := "OK"
	switch {
	case v.Failed():
		verdict = "FAILED"
	case v.API.Status == CheckInterrupted || v.ReadModel.Status == CheckInterrupted:
		verdict = "INTERRUPTED"
	}
	fmt.Fprintf(w, "verification: %s\n", verdict)
	fmt.Fprintf(w, "  %d pairs written (%d acknowledged writes, %d of unknown outcome)", v.Pairs, v.AcknowledgedWrites, v.UnknownWrites)
	if v.AssumeFresh {
		fmt.Fprint(w, "; fresh target assumed")
	}
	fmt.Fprintln(w)
	for _, c := range []struct {
		name string
		c    Check
	}{{"API (getAllStates)", v.API}, {"read model (eventual)", v.ReadModel}} {
		fmt.Fprintf(w, "  %-22s %s", c.name+":", c.c.Status)
		switch c.c.Status {
		case CheckOK, CheckFailed:
			fmt.Fprintf(w, ", %d pairs checked, %d mismatches, %d unreadable", c.c.Checked, c.c.Mismatches, c.c.Unreadable)
		}
		if c.c.Status == CheckOK && c.c.ConvergedAfterSeconds > 0 {
			fmt.Fprintf(w, ", converged %.2fs after the load ended", c.c.ConvergedAfterSeconds)
		}
		if c.c.Detail != "" {
			fmt.Fprintf(w, " (%s)", c.c.Detail)
		}
		fmt.Fprintln(w)
		for _, m := range c.c.Examples {
			fmt.Fprintf(w, "    (%q, %d): want %s, got %s\n", m.UserID, m.ArtifactID, m.Want, m.Got)
		}
	}
}
