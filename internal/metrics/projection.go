package metrics

import "time"

// ProjectionStarted, ProjectionFinished and ProjectionClockAdjusted
// implement activities.Observer.
func (m *Metrics) ProjectionStarted() { m.projectionInFlight.Inc() }

// ProjectionFinished records one attempt's result; lag counts when ok.
func (m *Metrics) ProjectionFinished(result string, attempt int32, lag time.Duration) {
	m.projectionInFlight.Dec()
	m.projectionAttempts.WithLabelValues(result).Inc()
	if attempt > 1 {
		m.projectionRetries.Inc()
	}
	if result == "ok" {
		m.projectionLag.Observe(lag.Seconds())
	}
}

// ProjectionClockAdjusted counts a projection written above a newer row.
func (m *Metrics) ProjectionClockAdjusted() { m.projectionClock.Inc() }
