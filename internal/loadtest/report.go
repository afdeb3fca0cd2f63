package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstate/artifactstate/internal/linearizability"
)

// Report is what a run measured, plus what the caller adds: the scenario
// and its parameters, and the verification.
type Report struct {
	Scenario string            `json:"scenario,omitempty"`
	Target   string            `json:"target,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Started  time.Time         `json:"started"`
	// DurationSeconds is the measured window: from the start of the run to
	// the end of its last call. Throughputs are over this window.
	DurationSeconds float64 `json:"durationSeconds"`
	// Interrupted: the run was stopped before its end (Ctrl-C).
	Interrupted bool `json:"interrupted,omitempty"`
	// Canceled counts calls in flight when the run was interrupted; they
	// are in no other figure.
	Canceled int `json:"canceled,omitempty"`
	// Total aggregates every call.
	Total        CallStats     `json:"total"`
	Calls        []CallStats   `json:"calls"`
	Verification *Verification `json:"verification,omitempty"`
	// ZeroErrors: the scenario expects every call to succeed, so any error
	// (even a 503 or 504) fails the run.
	ZeroErrors bool `json:"zeroErrorsExpected,omitempty"`
	// ReadAfterWrite is the new-pairs scenario's check.
	ReadAfterWrite *ReadAfterWrite `json:"readAfterWrite,omitempty"`
	// Linearizability is the hot-pair scenario's check of its history.
	Linearizability *linearizability.Report `json:"linearizability,omitempty"`
	// FanOut is the fan-out scenario's account of its items.
	FanOut *FanOutReport `json:"fanOut,omitempty"`
}

// CallStats are the figures of one call (or of all, in Report.Total).
type CallStats struct {
	Call string `json:"call"`
	// Count is every completed call, successful or not; Throughput is Count
	// per second of the measured window.
	Count      int     `json:"count"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	Throughput float64 `json:"throughput"`
	// Latency of the successful calls, in milliseconds.
	Latency Latency `json:"latencyMs"`
	// ErrorsByStatus counts failed calls by HTTP status (0: no answer, or
	// not HTTP; 200: an unexpected body).
	ErrorsByStatus map[int]int `json:"errorsByStatus,omitempty"`
	// ErrorsByMessage counts failed calls by error ("503 unavailable",
	// "dial tcp ...: connection refused"), at most 20 distinct per call.
	ErrorsByMessage map[string]int `json:"errorsByMessage,omitempty"`
	// NonRetriable counts errors other than 503, 504 and client timeouts.
	NonRetriable int `json:"nonRetriable"`
	// Dropped counts arrivals of the open model not started because too
	// many calls were in flight.
	Dropped  int     `json:"dropped"`
	Timeline []Point `json:"timeline,omitempty"`
}

// Latency summarizes latency samples, in milliseconds (zero when none).
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Point is one second of a call's timeline, by completion time: calls
// completed (Count, of which Errors failed), arrivals dropped, and the
// p50 and p99 latency (ms) of the successful calls (0 when none).
type Point struct {
	Second  int     `json:"second"`
	Count   int     `json:"count"`
	Errors  int     `json:"errors"`
	Dropped int     `json:"dropped,omitempty"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
}

// Failed reports whether the run had errors that retrying would not fix
// (anything but 503, 504 and client timeouts), or any error when ZeroErrors,
// or a check failed.
func (r *Report) Failed() bool {
	return len(r.Failures()) > 0
}

// Failures says why the run failed (nothing if it did not).
func (r *Report) Failures() []string {
	var out []string
	switch {
	case r.ZeroErrors && r.Total.Errors > 0:
		out = append(out, fmt.Sprintf("%d calls failed (this scenario expects none)", r.Total.Errors))
	case r.Total.NonRetriable > 0:
		out = append(out, fmt.Sprintf("%d calls failed with a non-retriable error", r.Total.NonRetriable))
	}
	if r.Verification != nil && r.Verification.Failed() {
		out = append(out, "the verification of the final state failed")
	}
	if r.ReadAfterWrite != nil && r.ReadAfterWrite.Failed() {
		out = append(out, "a new pair was not written, or not read back as written")
	}
	if r.FanOut != nil && r.FanOut.Failed() {
		out = append(out, "a follower's pair was not applied (a failed item or call)")
	}
	if r.Linearizability != nil && !r.Linearizability.OK() {
		out = append(out, "the history is not linearizable (or its check timed out)")
	}
	return out
}

// Call returns the stats of the named call (zero if it never ran).
func (r *Report) Call(name string) CallStats {
	for _, c := range r.Calls {
		if c.Call == name {
			return c
		}
	}
	return CallStats{Call: name}
}

// latencyCells are the mean, p50, p90, p99 and max latency formatted for
// a table ("-" when no call succeeded).
func (c CallStats) latencyCells() []string {
	l := c.Latency
	cells := []float64{l.Mean, l.P50, l.P90, l.P99, l.Max}
	out := make([]string, len(cells))
	for i, v := range cells {
		out[i] = "-"
		if c.OK > 0 {
			out[i] = strconv.FormatFloat(v, 'f', 2, 64)
		}
	}
	return out
}

// callOrder is the order of the known calls in reports: the Gatling
// scenario's, then the others; unknown calls follow, by name.
var callOrder = []string{
	CallSetRead, CallIsRead, CallAddToFeed, CallIsInFeed, CallRemoveFromFeed, CallGetAllStates,
	CallGetAllStatesGet, CallEventual, CallFanOut,
}

func sortCalls[V any](calls map[string]V) []string {
	names := slices.Collect(maps.Keys(calls))
	rank := func(n string) int {
		if i := slices.Index(callOrder, n); i >= 0 {
			return i
		}
		return len(callOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return names
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a human-readable summary: one aligned line per call,
// the errors, and the verification.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	title := "load test"
	if r.Scenario != "" {
		title += ": " + r.Scenario
	}
	if r.Target != "" {
		title += " against " + r.Target
	}
	fmt.Fprintln(&b, title)
	if len(r.Params) > 0 {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			ps = append(ps, k+"="+r.Params[k])
		}
		fmt.Fprintf(&b, "  %s\n", strings.Join(ps, " "))
	}
	fmt.Fprintf(&b, "  started %s, measured %.2fs: %d calls (%.1f/s), %d errors (%d non-retriable), %d dropped",
		r.Started.Format(time.RFC3339), r.DurationSeconds, r.Total.Count, r.Total.Throughput,
		r.Total.Errors, r.Total.NonRetriable, r.Total.Dropped)
	if r.Interrupted {
		fmt.Fprintf(&b, "; INTERRUPTED (%d calls in flight cancelled)", r.Canceled)
	}
	b.WriteString("\n\n")

	rows := append(slices.Clone(r.Calls), r.Total)
	width := len("call")
	for _, c := range rows {
		width = max(width, len(c.Call))
	}
	fmt.Fprintf(&b, "%-*s %8s %9s %9s %9s %9s %9s %9s %7s %7s\n", width, "call",
		"count", "calls/s", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "dropped")
	for i, c := range rows {
		if i == len(rows)-1 {
			fmt.Fprintln(&b, strings.Repeat("-", width+82))
		}
		fmt.Fprintf(&b, "%-*s %8d %9.1f", width, c.Call, c.Count, c.Throughput)
		for _, v := range c.latencyCells() {
			fmt.Fprintf(&b, " %9s", v)
		}
		fmt.Fprintf(&b, " %7d %7d\n", c.Errors, c.Dropped)
	}
	if r.Total.Errors > 0 {
		b.WriteString("\nerrors:\n")
		for _, c := range r.Calls {
			for _, msg := range slices.Sorted(maps.Keys(c.ErrorsByMessage)) {
				fmt.Fprintf(&b, "  %-*s %7d  %s\n", width, c.Call, c.ErrorsByMessage[msg], msg)
			}
		}
		var byStatus []string
		for _, s := range slices.Sorted(maps.Keys(r.Total.ErrorsByStatus)) {
			label := fmt.Sprint(s)
			if s == 0 {
				label = "no answer"
			}
			byStatus = append(byStatus, fmt.Sprintf("%s: %d", label, r.Total.ErrorsByStatus[s]))
		}
		fmt.Fprintf(&b, "  by status: %s\n", strings.Join(byStatus, ", "))
	}
	r.writeChecks(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeChecks writes the checks' results, each after a blank line.
func (r *Report) writeChecks(w io.Writer) {
	if f := r.FanOut; f != nil {
		fmt.Fprintln(w)
		f.writeText(w)
	}
	if v := r.ReadAfterWrite; v != nil {
		fmt.Fprintln(w)
		v.writeText(w)
	}
	if l := r.Linearizability; l != nil {
		fmt.Fprintf(w, "\nlinearizability: %s\n", l)
	}
	if v := r.Verification; v != nil {
		fmt.Fprintln(w)
		v.writeText(w)
	}
}
