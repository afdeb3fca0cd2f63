package metrics

import (
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// temporalHandler is a client.MetricsHandler on client_golang: counters get
// a _total suffix and timers become histograms in seconds with a _seconds
// suffix, the names Temporal's public SDK dashboards query
// (temporal_request_total, temporal_request_latency_seconds_bucket, ...).
//
// Prometheus needs one label set per metric name, while the SDK emits a name
// with different tag sets (an error adds status_code, a worker metric has no
// operation, ...). Every metric therefore gets the same labels: every tag the
// SDK and our workflow code use (temporalLabels), whatever was emitted
// first; a tag not emitted is empty (PromQL treats an empty label as absent).
// A tag outside that list is dropped, whichever emission brings it.
type temporalHandler struct {
	reg  prometheus.Registerer
	mu   *sync.Mutex
	vecs map[string]*vec
	tags map[string]string
}

type vec struct {
	labels    []string
	counter   *prometheus.CounterVec
	gauge     *prometheus.GaugeVec
	histogram *prometheus.HistogramVec
}

func newTemporalHandler(reg prometheus.Registerer) *temporalHandler {
	return &temporalHandler{reg: reg, mu: &sync.Mutex{}, vecs: map[string]*vec{}, tags: map[string]string{}}
}

// temporalLabels are the tags the SDK (internal/common/metrics/constants.go
// of go.temporal.io/sdk) and the entity workflow's metrics use.
var temporalLabels = []string{
	"activity_type", "cause", "client_name", "command", "failure_reason", "namespace", "nexus_operation",
	"nexus_service", "operation", "poller_type", "status_code", "task_queue", "worker_type", "workflow_type",
}

// Temporal is the SDK metrics handler to set in client.Options.
func (m *Metrics) Temporal() client.MetricsHandler { return m.temporal }

func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	maps.Copy(merged, tags)
	return &temporalHandler{reg: h.reg, mu: h.mu, vecs: h.vecs, tags: merged}
}

func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	name = sanitize(name)
	if !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	v := h.vec(name, func(labels []string) *vec {
		return &vec{labels: labels, counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Temporal SDK counter " + name}, labels)}
	})
	if v.counter == nil {
		return client.MetricsNopHandler.Counter(name)
	}
	return counter{v.counter.WithLabelValues(h.values(v.labels)...)}
}

func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	name = sanitize(name)
	v := h.vec(name, func(labels []string) *vec {
		return &vec{labels: labels, gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name}, labels)}
	})
	if v.gauge == nil {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gauge{v.gauge.WithLabelValues(h.values(v.labels)...)}
}

func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	name = sanitize(name) + "_seconds"
	v := h.vec(name, func(labels []string) *vec {
		return &vec{labels: labels, histogram: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name, Help: "Temporal SDK timer " + name, Buckets: latencyBuckets}, labels)}
	})
	if v.histogram == nil {
		return client.MetricsNopHandler.Timer(name)
	}
	return timer{v.histogram.WithLabelValues(h.values(v.labels)...)}
}

// vec returns the collector of name, registering it on first use.
func (h *temporalHandler) vec(name string, create func(labels []string) *vec) *vec {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.vecs[name]; ok {
		return v
	}
	v := create(temporalLabels)
	var c prometheus.Collector
	switch {
	case v.counter != nil:
		c = v.counter
	case v.gauge != nil:
		c = v.gauge
	default:
		c = v.histogram
	}
	if err := h.reg.Register(c); err != nil {
		// Another type already owns the name: drop this metric.
		v = &vec{}
	}
	h.vecs[name] = v
	return v
}

func (h *temporalHandler) values(labels []string) []string {
	out := make([]string, len(labels))
	for i, l := range labels {
		out[i] = h.tags[l]
	}
	return out
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':' {
			return r
		}
		return '_'
	}, name)
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(n int64) { c.c.Add(float64(n)) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }
