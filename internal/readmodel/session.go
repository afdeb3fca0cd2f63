package readmodel

import (
	"context"
	"errors"
	"log/slog"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// A session's watchdog probes it every watchInterval; a session that has
// had no host to send to (gocql.ErrNoConnections) for staleSessionAfter is
// replaced by a new one, if a new one can connect.
//
// The driver brings a session back by itself when nodes return (see
// newCluster), well inside staleSessionAfter; the watchdog is the safety net
// for a driver that does not (a known class of gocql bugs: "no hosts
// available in the pool" until the process restarts), so that a restart of
// Cassandra never needs a restart of every api and worker.
const (
	watchInterval     = 5 * time.Second
	staleSessionAfter = 30 * time.Second
)

// watch runs until stop is closed or session is closed or replaced.
func (s *Store) watch(session *gocql.Session, stop <-chan struct{}) {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var stale staleness
	var lostAt time.Time // when the session last lost its connections
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if session.Closed() {
			return
		}
		err := s.probe(session)
		switch noHosts := errors.Is(err, gocql.ErrNoConnections); {
		case noHosts && lostAt.IsZero():
			lostAt = time.Now()
			s.logger.Warn("Read model: no connection to Cassandra; the driver keeps reconnecting", "hosts", s.cfg.Hosts)
		case !noHosts && !lostAt.IsZero():
			s.logger.Info("Read model: reconnected to Cassandra", "hosts", s.cfg.Hosts, "after", time.Since(lostAt).Round(time.Second))
			lostAt = time.Time{}
		}
		if !stale.observe(err, time.Now()) {
			continue
		}
		fresh, err := s.newSession()
		if err != nil { // Cassandra still down: try again staleSessionAfter later
			s.logger.Debug("Read model session still has no hosts; a new one cannot connect either", "error", err)
			continue
		}
		if !s.replace(session, fresh) {
			fresh.Close()
			return
		}
		s.logger.Warn("Replaced the read-model session: the driver had no connection for a while, a new session has",
			"after", staleSessionAfter, "hosts", s.cfg.Hosts)
		return
	}
}

// replace swaps old for fresh if old is still the current session (not
// closed or replaced meanwhile). old is closed once the queries already
// running on it have had their timeout to finish.
func (s *Store) replace(old, fresh *gocql.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != old {
		return false
	}
	close(s.stopWatch)
	s.setSession(fresh)
	time.AfterFunc(s.cfg.Timeout, old.Close)
	return true
}

// probe runs the cheapest query there is on session.
func (s *Store) probe(session *gocql.Session) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	var v string
	return session.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v)
}

// staleness tracks how long a session has had no host to send to.
type staleness struct{ since time.Time }

// observe records the outcome of a probe at now and reports whether the
// session has had no host for staleSessionAfter; it then starts counting
// again, so replacements are tried at most once per staleSessionAfter. Any
// other outcome, an error a node sent or a timeout included, means the
// driver has a connection.
func (st *staleness) observe(err error, now time.Time) bool {
	switch {
	case !errors.Is(err, gocql.ErrNoConnections):
		st.since = time.Time{}
		return false
	case st.since.IsZero():
		st.since = now
		return false
	case now.Sub(st.since) < staleSessionAfter:
		return false
	}
	st.since = now
	return true
}

// driverLogger sends the driver's own logs to slog at Debug: while
// Cassandra is down it repeats its errors every second; watch logs the
// transitions (connection lost, regained, session replaced) once.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Error(msg string, fields ...gocql.LogField)   { d.log(msg, fields) }
func (d driverLogger) Warning(msg string, fields ...gocql.LogField) { d.log(msg, fields) }
func (d driverLogger) Info(msg string, fields ...gocql.LogField)    { d.log(msg, fields) }
func (d driverLogger) Debug(msg string, fields ...gocql.LogField)   { d.log(msg, fields) }

func (d driverLogger) log(msg string, fields []gocql.LogField) {
	if !d.l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		attrs = append(attrs, slog.Any(f.Name, f.Value.Any()))
	}
	d.l.LogAttrs(context.Background(), slog.LevelDebug, msg, attrs...)
}
