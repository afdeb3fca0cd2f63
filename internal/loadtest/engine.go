// Package loadtest generates load on the service and reports what it
// measured: a generic engine (closed model, open model, a Gatling-style
// ramp of virtual users, a pool working through a list of items) running
// operations, an HTTP client for the API whose calls are such operations,
// the scenarios (gatling.go, mix.go, newpairs.go, hotpair.go, fanout.go),
// a report (JSON, text, HTML), and checks: every acknowledged write is
// reflected in the final state (verify.go), reads right after a write
// reflect it (newpairs.go), a hot pair's history is linearizable
// (hotpair.go), and every follower of a fan-out got the artifact
// (fanout.go).
//
// The engine knows nothing about HTTP: an Op is a named call and a function
// returning a Result, so the same runners and report serve other clients
// (e.g. raw Temporal SDK calls).
//
// Latency: each call's count, min, max and mean are exact; its percentiles
// come from an HDR histogram (github.com/HdrHistogram/hdrhistogram-go), within
// 0.1% of the sample they stand for; the timeline keeps each second's p50
// and p99. Memory grows with the run's length in seconds, not with the
// number of calls. Failed calls are counted by status and by error, not in
// the latency figures.
package loadtest

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one call to run: Call names it in the report (calls of the same name
// are aggregated), Do performs it.
type Op struct {
	Call string
	Do   func(ctx context.Context) Result
}

// Result is the outcome of one Op.
type Result struct {
	// Status is the HTTP status of the answer; 0 for a call that is not
	// HTTP, or that got no answer (Err then says why). A non-HTTP call may
	// set the HTTP equivalent of its failure (503 overloaded or unavailable,
	// 504 timed out) to have it counted as retriable.
	Status int
	// Err is nil when the call succeeded: for HTTP calls, a 2xx status with
	// the expected body.
	Err error
	// Write is true for a call that changes state; Acked is true when the
	// service acknowledged it (for the API, 200 with {"success":true}).
	Write bool
	Acked bool
}

// Retriable reports whether a failure is one a client should retry: 503
// (unavailable, overloaded), 504 (timeout), or no answer within the
// client's timeout. Every other failure (4xx, 500, a refused connection, an
// unexpected body) is a defect of the service or of the load test.
func (r Result) Retriable() bool {
	if r.Err == nil {
		return false
	}
	switch r.Status {
	case 503, 504:
		return true
	case 0:
		return isTimeout(r.Err)
	}
	return false
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Runner runs operations; its zero value is ready to use. Progress, when
// set, is called every ProgressEvery (default 5s) while a run lasts.
type Runner struct {
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed   time.Duration
	Completed int
	Errors    int
	Dropped   int
	InFlight  int
}

// RunClosed runs the closed model with a zero Runner.
func RunClosed(ctx context.Context, concurrency int, duration time.Duration, next func(worker int) Op) *Report {
	return (&Runner{}).Closed(ctx, concurrency, duration, next)
}

// RunOpen runs the open model with a zero Runner.
func RunOpen(ctx context.Context, ratePerSec float64, duration time.Duration, maxInFlight int, next func() Op) *Report {
	return (&Runner{}).Open(ctx, ratePerSec, duration, maxInFlight, next)
}

// RunRamp runs a ramp of virtual users with a zero Runner.
func RunRamp(ctx context.Context, users int, ramp time.Duration, user func(u int) []Op) *Report {
	return (&Runner{}).Ramp(ctx, users, ramp, user)
}

// Closed is the closed model (maximum throughput): concurrency workers each
// run ops back to back, next(worker) giving each one's next op, until
// duration has passed; calls in flight then complete. next is called from
// the worker's goroutine, so per-worker state needs no lock.
//
// Cancelling ctx stops the run at once: calls in flight are cancelled and
// left out of the report (counted as Canceled); what completed is reported.
func (r *Runner) Closed(ctx context.Context, concurrency int, duration time.Duration, next func(worker int) Op) *Report {
	rec := newRecorder()
	stop := r.watch(rec)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			for time.Since(rec.start) < duration && ctx.Err() == nil {
				op := next(w)
				rec.run(ctx, op)
			}
		})
	}
	wg.Wait()
	stop()
	return rec.report(ctx)
}

// Each runs n items on concurrency workers, each worker taking the next
// item until none is left: item(ctx, i, run) does item i's calls through
// run, which performs an op, records it and returns its result (so an item
// may decide its next call from the last answer). Cancelling ctx stops
// handing out items; calls in flight are cancelled and counted as Canceled.
func (r *Runner) Each(ctx context.Context, concurrency, n int, item func(ctx context.Context, i int, run func(Op) Result)) *Report {
	rec := newRecorder()
	stop := r.watch(rec)
	run := func(op Op) Result { return rec.run(ctx, op) }
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(concurrency, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				item(ctx, i, run)
			}
		})
	}
	wg.Wait()
	stop()
	return rec.report(ctx)
}

// Open is the open model (constant arrival rate): an op arrives every
// 1/ratePerSec seconds for duration, on a fixed schedule that never waits
// for completions; next is called once per arrival, from one goroutine.
// An arrival finding maxInFlight calls still running is not started and is
// counted as dropped (per call and per second). If the scheduler falls
// behind, late arrivals start at once, and their latency is measured from
// the time they were due, so a stall shows in the latency instead of
// vanishing from it (no coordinated omission). Vegeta (tsenart/vegeta) was
// considered as the engine: it paces HTTP targets, but the scenarios here
// need per-call bookkeeping it does not give (each op's pair for the
// verification, the write ledger, gRPC calls, dropped arrivals per call), so
// it would replace this loop, not the code around it.
func (r *Runner) Open(ctx context.Context, ratePerSec float64, duration time.Duration, maxInFlight int, next func() Op) *Report {
	rec := newRecorder()
	stop := r.watch(rec)
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	// Arrivals are due at i/ratePerSec for every i with that before duration.
	arrivals := int(math.Ceil(ratePerSec*duration.Seconds() - 1e-9))
	interval := float64(time.Second) / ratePerSec
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
schedule:
	for i := range arrivals {
		due := rec.start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		op := next()
		select {
		case slots <- struct{}{}:
		default:
			rec.drop(op.Call, due)
			continue
		}
		rec.begin()
		wg.Go(func() {
			defer func() { <-slots }()
			res := op.Do(ctx)
			rec.record(ctx, op.Call, due, time.Now(), res)
		})
	}
	wg.Wait()
	stop()
	return rec.report(ctx)
}

// Ramp is the Gatling scenario's injection (rampUsers(users) during ramp):
// user u starts at u×ramp/users and runs the ops user(u) returns, one after
// the other; the run ends when every user is done. user is called when the
// user starts, from one goroutine, so it may share a random source.
func (r *Runner) Ramp(ctx context.Context, users int, ramp time.Duration, user func(u int) []Op) *Report {
	rec := newRecorder()
	stop := r.watch(rec)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	interval := time.Duration(0)
	if users > 0 {
		interval = ramp / time.Duration(users)
	}
inject:
	for u := range users {
		if wait := time.Until(rec.start.Add(time.Duration(u) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break inject
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		ops := user(u)
		wg.Go(func() {
			for _, op := range ops {
				if ctx.Err() != nil {
					return
				}
				rec.run(ctx, op)
			}
		})
	}
	wg.Wait()
	stop()
	return rec.report(ctx)
}

// watch calls r.Progress periodically until the returned stop is called.
func (r *Runner) watch(rec *recorder) (stop func()) {
	if r.Progress == nil {
		return func() {}
	}
	every := r.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.Progress(rec.progress())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
