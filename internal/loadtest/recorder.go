package loadtest

import (
	"context"
	"errors"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// maxMessages bounds the distinct error messages kept per call; the rest
// are counted under otherMessages.
const (
	maxMessages   = 20
	otherMessages = "(other errors)"
)

// Latencies are recorded in microseconds, from 1 µs to an hour (longer ones
// count as an hour), to 3 significant digits: a percentile is within 0.1% of
// the sample it stands for.
const (
	maxLatencyMicros = int64(time.Hour / time.Microsecond)
	latencyDigits    = 3
)

// openSeconds is how many of the latest seconds of a call's timeline keep a
// histogram; older ones keep only their p50 and p99. Calls are filed by
// completion time, at completion, so they arrive almost in order; one filed
// later than that still counts, but not in its second's percentiles.
const openSeconds = 3

// recorder collects the outcome of every call of a run, in memory bounded
// by the number of calls' names and the run's length in seconds, not by the
// number of calls.
type recorder struct {
	start time.Time

	mu        sync.Mutex
	calls     map[string]*callRecord
	all       *callRecord // every call, for Report.Total
	completed int
	errors    int
	dropped   int
	inFlight  int
	canceled  int
	last      time.Time // when the last call completed
}

// callRecord is everything recorded about one call.
type callRecord struct {
	latency   latencies
	seconds   []second
	closed    int // seconds[:closed] have their percentiles and no histogram
	byStatus  map[int]int
	byMessage map[string]int
	failed    int // non-retriable errors
}

// second is one second of a call's timeline.
type second struct {
	ok, errors, dropped int
	hist                *hdrhistogram.PackedHistogram // µs; nil once closed or while empty
	p50, p99            float64                       // ms, once closed
}

// latencies summarizes samples: count, min, max and mean exactly, the
// percentiles from a histogram.
type latencies struct {
	hist          *hdrhistogram.Histogram // µs
	n             int
	sum, min, max float64 // ms
}

func (l *latencies) add(d time.Duration) {
	if l.hist == nil {
		l.hist = hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
	}
	ms := float64(d) / float64(time.Millisecond)
	if l.n == 0 || ms < l.min {
		l.min = ms
	}
	l.max = max(l.max, ms)
	l.n++
	l.sum += ms
	_ = l.hist.RecordValue(micros(d)) // micros is always in range
}

// summary is the Latency of the samples (zero when none). The percentiles
// are kept within [min, max].
func (l *latencies) summary() Latency {
	if l.n == 0 {
		return Latency{}
	}
	p := func(q float64) float64 {
		return math.Min(math.Max(float64(l.hist.ValueAtPercentile(q))/1000, l.min), l.max)
	}
	return Latency{Min: l.min, Mean: l.sum / float64(l.n), P50: p(50), P90: p(90), P99: p(99), Max: l.max}
}

// micros is d in whole microseconds, within the histograms' range.
func micros(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), 0), maxLatencyMicros)
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), calls: map[string]*callRecord{}, all: newCallRecord()}
}

func newCallRecord() *callRecord {
	return &callRecord{byStatus: map[int]int{}, byMessage: map[string]int{}}
}

func (r *recorder) call(name string) *callRecord {
	c := r.calls[name]
	if c == nil {
		c = newCallRecord()
		r.calls[name] = c
	}
	return c
}

// second returns second i of the timeline, closing those that fell out of
// the open window.
func (c *callRecord) second(i int) *second {
	i = max(i, 0)
	for len(c.seconds) <= i {
		c.seconds = append(c.seconds, second{})
	}
	for ; c.closed < i-openSeconds+1; c.closed++ {
		c.seconds[c.closed].close()
	}
	return &c.seconds[i]
}

func (s *second) add(d time.Duration) {
	s.ok++
	if s.hist == nil {
		s.hist = hdrhistogram.NewPacked(1, maxLatencyMicros, latencyDigits)
	}
	_ = s.hist.RecordValue(micros(d))
}

// percentiles are the second's p50 and p99 (ms), from its histogram while
// it is open.
func (s *second) percentiles() (p50, p99 float64) {
	if s.hist == nil {
		return s.p50, s.p99
	}
	return float64(s.hist.ValueAtPercentile(50)) / 1000, float64(s.hist.ValueAtPercentile(99)) / 1000
}

func (s *second) close() {
	s.p50, s.p99 = s.percentiles()
	s.hist = nil
}

// run performs op now and records it, latency measured from now.
func (r *recorder) run(ctx context.Context, op Op) Result {
	r.begin()
	began := time.Now()
	res := op.Do(ctx)
	r.record(ctx, op.Call, began, time.Now(), res)
	return res
}

func (r *recorder) begin() {
	r.mu.Lock()
	r.inFlight++
	r.mu.Unlock()
}

// record files the result of a call that began at began and ended at end.
// A call cut short because ctx was cancelled (the run was interrupted) is
// counted as canceled, not as an error.
func (r *recorder) record(ctx context.Context, call string, began, end time.Time, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	if res.Err != nil && ctx.Err() != nil && errors.Is(res.Err, context.Canceled) {
		r.canceled++
		return
	}
	r.completed++
	if end.After(r.last) {
		r.last = end
	}
	i := int(end.Sub(r.start) / time.Second)
	if res.Err == nil {
		for _, c := range []*callRecord{r.call(call), r.all} {
			c.latency.add(end.Sub(began))
			c.second(i).add(end.Sub(began))
		}
		return
	}
	r.errors++
	msg := errorMessage(res.Err)
	for _, c := range []*callRecord{r.call(call), r.all} {
		c.second(i).errors++
		c.byStatus[res.Status]++
		m := msg
		if _, ok := c.byMessage[m]; !ok && len(c.byMessage) >= maxMessages {
			m = otherMessages
		}
		c.byMessage[m]++
		if !res.Retriable() {
			c.failed++
		}
	}
}

// drop counts an arrival of the open model that was not started.
func (r *recorder) drop(call string, due time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped++
	i := int(due.Sub(r.start) / time.Second)
	r.call(call).second(i).dropped++
	r.all.second(i).dropped++
}

func (r *recorder) progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Progress{Elapsed: time.Since(r.start), Completed: r.completed, Errors: r.errors, Dropped: r.dropped, InFlight: r.inFlight}
}

// errorMessage is err without the per-request details a *url.Error adds
// (method and URL, which may name the pair), so equal failures count
// together.
func errorMessage(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		err = u.Err
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}

// report builds the report of the run so far.
func (r *recorder) report(ctx context.Context) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.last
	if end.Before(r.start) || r.completed == 0 {
		end = time.Now()
	}
	window := end.Sub(r.start).Seconds()
	rep := &Report{
		Started:         r.start.UTC(),
		DurationSeconds: window,
		Interrupted:     ctx.Err() != nil,
		Canceled:        r.canceled,
	}
	for _, name := range sortCalls(r.calls) {
		rep.Calls = append(rep.Calls, r.calls[name].stats(name, window))
	}
	rep.Total = r.all.stats("all", window)
	return rep
}

func (c *callRecord) stats(name string, window float64) CallStats {
	st := CallStats{Call: name, NonRetriable: c.failed}
	for i := range c.seconds {
		s := &c.seconds[i]
		st.OK += s.ok
		st.Errors += s.errors
		st.Dropped += s.dropped
		p := Point{Second: i, Count: s.ok + s.errors, Errors: s.errors, Dropped: s.dropped}
		if s.ok > 0 {
			p.P50, p.P99 = s.percentiles()
		}
		st.Timeline = append(st.Timeline, p)
	}
	st.Count = st.OK + st.Errors
	st.Throughput = throughput(st.Count, window)
	st.Latency = c.latency.summary()
	st.ErrorsByStatus = nonEmpty(c.byStatus)
	st.ErrorsByMessage = nonEmpty(c.byMessage)
	return st
}

func throughput(n int, window float64) float64 {
	if window <= 0 {
		return 0
	}
	return float64(n) / window
}

// nonEmpty is a copy of m, or nil when m is empty (so a report round-trips
// through JSON with omitempty).
func nonEmpty[K comparable](m map[K]int) map[K]int {
	if len(m) == 0 {
		return nil
	}
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
