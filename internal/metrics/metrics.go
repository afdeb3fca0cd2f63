// Package metrics is the process's Prometheus instrumentation on a private
// registry: HTTP (RED), the Temporal SDK (temporal_* names, so Temporal's
// public SDK dashboards work), the projection and Cassandra, the Go runtime
// and the process, and build info.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of our own.
const Namespace = "artifactstate"

// latencyBuckets (seconds) span fast local calls to Temporal long polls.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics owns the registry and our own collectors.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge

	projectionAttempts *prometheus.CounterVec
	projectionRetries  prometheus.Counter
	projectionLag      prometheus.Histogram
	projectionInFlight prometheus.Gauge
	projectionClock    prometheus.Counter

	cassandraDuration *prometheus.HistogramVec
	cassandraErrors   *prometheus.CounterVec

	temporal *temporalHandler
}

// New returns the metrics of one process, build info included.
func New(version, commit string) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	f(buildInfo)

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help: "HTTP request latency, by route template and method.", Buckets: latencyBuckets,
	}, []string{"route", "method"})
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being served.",
	})
	m.projectionAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "projection", Name: "attempts_total",
		Help: "Projection activity attempts, by result (ok, unavailable, timeout, rejected).",
	}, []string{"result"})
	m.projectionRetries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "projection", Name: "retries_total",
		Help: "Projection attempts that were retries of a failed attempt.",
	})
	m.projectionLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "projection", Name: "lag_seconds",
		Help:    "Time from a state change in an entity to its row written in Cassandra.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
	})
	m.projectionClock = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "projection", Name: "clock_adjusted_total",
		Help: "Projections that found a newer write in the row than the entity's projection clock (a write Cassandra would have ignored) and wrote above it.",
	})
	m.projectionInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "projection", Name: "in_flight",
		Help: "Projection attempts running in this worker.",
	})
	m.cassandraDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "cassandra", Name: "query_duration_seconds",
		Help: "Cassandra query and batch latency, by operation (verb and table).", Buckets: latencyBuckets,
	}, []string{"operation"})
	m.cassandraErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "cassandra", Name: "errors_total",
		Help: "Cassandra queries and batches that failed, by operation.",
	}, []string{"operation"})
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.httpInFlight,
		m.projectionAttempts, m.projectionRetries, m.projectionLag, m.projectionInFlight, m.projectionClock,
		m.cassandraDuration, m.cassandraErrors} {
		f(c)
	}
	for _, result := range []string{"ok", "unavailable", "timeout", "rejected"} {
		m.projectionAttempts.WithLabelValues(result) // every result's series from the start
	}
	m.temporal = newTemporalHandler(reg)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, EnableOpenMetrics: false})
}

// ObserveHTTP records one answered request.
func (m *Metrics) ObserveHTTP(route, method, code string, d time.Duration) {
	m.httpRequests.WithLabelValues(route, method, code).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// HTTPInFlight is the gauge of requests being served.
func (m *Metrics) HTTPInFlight() prometheus.Gauge { return m.httpInFlight }
