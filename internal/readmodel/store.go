// Package readmodel is the Cassandra read model: the schema and its
// migrations, the projection's idempotent writes, and the reads the entity
// workflows cannot answer (a user's feed, what a user has read) plus an
// eventually-consistent read of one pair.
package readmodel

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Row is the projected state of one (user, artifact) pair.
type Row struct {
	UserID             string
	ArtifactID         int64
	ArtifactRead       bool
	ArtifactInUserFeed bool
	// Version is the entity's state version.
	Version uint64
	// ChangedAt is when the entity's state last changed (workflow time).
	ChangedAt time.Time
}

// Projection is one write of a pair's row. Every statement carries
// Timestamp as its write timestamp (Cassandra keeps the cell with the
// highest timestamp), which is what makes older, repeated and reordered
// projections harmless.
type Projection struct {
	Row Row
	// Timestamp is the write timestamp, in microseconds.
	Timestamp int64
	// RemoveFromFeed and RemoveFromRead delete the pair from user_feed and
	// user_read. A delete writes a tombstone into the user's partition, so
	// the projection asks for one only when a flag went from true to false.
	RemoveFromFeed, RemoveFromRead bool
}

// Stamp is a pair's projected flags and the newest write timestamp of its
// row's cells.
type Stamp struct {
	ArtifactRead, ArtifactInUserFeed bool
	// Timestamp is the row's write timestamp (WRITETIME), in microseconds.
	Timestamp int64
}

// Page is one page of artifact IDs; Next is empty on the last page.
type Page struct {
	ArtifactIDs []int64
	Next        string
}

// Observer sees every query and batch (metrics.Cassandra).
type Observer interface {
	gocql.QueryObserver
	gocql.BatchObserver
}

// Store reads and writes the read model. It connects lazily and retries the
// connection on later calls, so a process starts while Cassandra is down.
type Store struct {
	cfg      config.Cassandra
	logger   *slog.Logger
	observer Observer

	mu      sync.Mutex
	session *gocql.Session
	// stopWatch ends the watchdog of session (see watch).
	stopWatch chan struct{}
}

// NewStore returns a Store for cfg; it does not connect yet. observer may
// be nil.
func NewStore(cfg config.Cassandra, logger *slog.Logger, observer Observer) *Store {
	return &Store{cfg: cfg, logger: logger, observer: observer}
}

// Close closes the session, if one was opened.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil {
		close(s.stopWatch)
		s.session.Close()
		s.session = nil
	}
}

// connect returns the current session, opening one if there is none. The
// driver reconnects a session to nodes that come back by itself; watch
// replaces a session the driver could not bring back.
func (s *Store) connect() (*gocql.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session != nil && !s.session.Closed() {
		return s.session, nil
	}
	if s.session != nil {
		close(s.stopWatch)
		s.session = nil
	}
	session, err := s.newSession()
	if err != nil {
		return nil, err
	}
	s.logger.Info("Connected to the read model", "hosts", s.cfg.Hosts, "keyspace", s.cfg.Keyspace)
	s.setSession(session)
	return session, nil
}

// setSession makes session the current one and starts its watchdog; the
// caller holds s.mu.
func (s *Store) setSession(session *gocql.Session) {
	s.session, s.stopWatch = session, make(chan struct{})
	go s.watch(session, s.stopWatch)
}

func (s *Store) newSession() (*gocql.Session, error) {
	cluster := newCluster(s.cfg, s.cfg.Keyspace)
	cluster.Logger = driverLogger{s.logger.With("component", "gocql")}
	if s.observer != nil {
		cluster.QueryObserver, cluster.BatchObserver = s.observer, s.observer
	}
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, classify(fmt.Errorf("connect to Cassandra %v: %w", s.cfg.Hosts, err))
	}
	return session, nil
}

// Ping checks that the read model answers.
func (s *Store) Ping(ctx context.Context) error {
	session, err := s.connect()
	if err != nil {
		return err
	}
	var v string
	return classify(session.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v))
}

// Project writes p: one unlogged batch of the state row and, as the flags
// say, an insert into or a delete from each list table.
func (s *Store) Project(ctx context.Context, p Projection) error {
	session, err := s.connect()
	if err != nil {
		return err
	}
	row := p.Row
	b := session.Batch(gocql.UnloggedBatch).WithTimestamp(p.Timestamp)
	b.Query(`INSERT INTO artifact_state (user_id, artifact_id, artifact_read, artifact_in_user_feed, version, changed_at)
		VALUES (?, ?, ?, ?, ?, ?)`, row.UserID, row.ArtifactID, row.ArtifactRead, row.ArtifactInUserFeed, int64(row.Version), row.ChangedAt)
	switch {
	case row.ArtifactInUserFeed:
		b.Query(`INSERT INTO user_feed (user_id, artifact_id) VALUES (?, ?)`, row.UserID, row.ArtifactID)
	case p.RemoveFromFeed:
		b.Query(`DELETE FROM user_feed WHERE user_id = ? AND artifact_id = ?`, row.UserID, row.ArtifactID)
	}
	switch {
	case row.ArtifactRead:
		b.Query(`INSERT INTO user_read (user_id, artifact_id) VALUES (?, ?)`, row.UserID, row.ArtifactID)
	case p.RemoveFromRead:
		b.Query(`DELETE FROM user_read WHERE user_id = ? AND artifact_id = ?`, row.UserID, row.ArtifactID)
	}
	return classify(b.ExecContext(ctx))
}

// Stamp returns the pair's projected flags and its row's write timestamp;
// ok is false if no row exists.
func (s *Store) Stamp(ctx context.Context, userID string, artifactID int64) (st Stamp, ok bool, err error) {
	session, err := s.connect()
	if err != nil {
		return st, false, err
	}
	var ts [3]*int64
	err = session.Query(`SELECT artifact_read, artifact_in_user_feed,
		WRITETIME(artifact_read), WRITETIME(artifact_in_user_feed), WRITETIME(version) FROM artifact_state
		WHERE user_id = ? AND artifact_id = ?`, userID, artifactID).
		ScanContext(ctx, &st.ArtifactRead, &st.ArtifactInUserFeed, &ts[0], &ts[1], &ts[2])
	if errors.Is(err, gocql.ErrNotFound) {
		return Stamp{}, false, nil
	}
	if err != nil {
		return st, false, classify(err)
	}
	for _, t := range ts {
		if t != nil {
			st.Timestamp = max(st.Timestamp, *t)
		}
	}
	return st, true, nil
}

// Get returns the projected row of a pair; ok is false if none was projected.
func (s *Store) Get(ctx context.Context, userID string, artifactID int64) (row Row, ok bool, err error) {
	session, err := s.connect()
	if err != nil {
		return row, false, err
	}
	var version int64
	err = session.Query(`SELECT artifact_read, artifact_in_user_feed, version, changed_at FROM artifact_state
		WHERE user_id = ? AND artifact_id = ?`, userID, artifactID).
		ScanContext(ctx, &row.ArtifactRead, &row.ArtifactInUserFeed, &version, &row.ChangedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Row{UserID: userID, ArtifactID: artifactID}, false, nil
	}
	if err != nil {
		return row, false, classify(err)
	}
	row.UserID, row.ArtifactID, row.Version = userID, artifactID, uint64(version)
	return row, true, nil
}

// GetMany returns the projected rows of one user's artifacts, by artifact
// ID; artifacts with no row are absent.
func (s *Store) GetMany(ctx context.Context, userID string, artifactIDs []int64) (map[int64]Row, error) {
	session, err := s.connect()
	if err != nil {
		return nil, err
	}
	out := make(map[int64]Row, len(artifactIDs))
	iter := session.Query(`SELECT artifact_id, artifact_read, artifact_in_user_feed, version, changed_at FROM artifact_state
		WHERE user_id = ? AND artifact_id IN ?`, userID, artifactIDs).IterContext(ctx)
	var row Row
	var version int64
	for iter.Scan(&row.ArtifactID, &row.ArtifactRead, &row.ArtifactInUserFeed, &version, &row.ChangedAt) {
		row.UserID, row.Version = userID, uint64(version)
		out[row.ArtifactID] = row
	}
	if err := iter.Close(); err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// Feed lists the artifacts in the user's feed, by ascending artifact ID.
func (s *Store) Feed(ctx context.Context, userID string, pageSize int, pageToken string) (Page, error) {
	return s.list(ctx, `SELECT artifact_id FROM user_feed WHERE user_id = ?`, userID, pageSize, pageToken)
}

// ReadArtifacts lists the artifacts the user has read, by ascending ID.
func (s *Store) ReadArtifacts(ctx context.Context, userID string, pageSize int, pageToken string) (Page, error) {
	return s.list(ctx, `SELECT artifact_id FROM user_read WHERE user_id = ?`, userID, pageSize, pageToken)
}

// ErrBadPageToken means the page token was not one this service issued.
var ErrBadPageToken = errors.New("invalid page token")

func (s *Store) list(ctx context.Context, stmt, userID string, pageSize int, pageToken string) (Page, error) {
	state, err := base64.RawURLEncoding.DecodeString(pageToken)
	if err != nil {
		return Page{}, ErrBadPageToken
	}
	session, err := s.connect()
	if err != nil {
		return Page{}, err
	}
	iter := session.Query(stmt, userID).PageSize(pageSize).PageState(state).IterContext(ctx)
	page := Page{ArtifactIDs: make([]int64, 0, min(iter.NumRows(), pageSize))}
	var id int64
	for iter.Scan(&id) {
		page.ArtifactIDs = append(page.ArtifactIDs, id)
	}
	next := iter.PageState()
	if err := iter.Close(); err != nil {
		var proto gocql.RequestError
		if pageToken != "" && errors.As(err, &proto) && proto.Code() == gocql.ErrCodeProtocol {
			return Page{}, ErrBadPageToken
		}
		return Page{}, classify(err)
	}
	if len(next) > 0 {
		page.Next = base64.RawURLEncoding.EncodeToString(next)
	}
	return page, nil
}

func newCluster(cfg config.Cassandra, keyspace string) *gocql.ClusterConfig {
	c := gocql.NewCluster(cfg.Hosts...)
	c.Keyspace = keyspace
	c.Consistency = gocql.ParseConsistency(cfg.Consistency)
	c.ConnectTimeout = cfg.ConnectTimeout
	c.Timeout = cfg.Timeout
	c.WriteTimeout = cfg.Timeout
	if cfg.LocalDC != "" {
		c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(cfg.LocalDC))
	}
	if cfg.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: cfg.Username, Password: cfg.Password}
	}
	if cfg.TLS.Enabled {
		c.SslOpts = &gocql.SslOptions{
			Config:                 &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLS.ServerName},
			CaPath:                 cfg.TLS.CAFile,
			CertPath:               cfg.TLS.CertFile,
			KeyPath:                cfg.TLS.KeyFile,
			EnableHostVerification: true,
		}
	}
	// Pinned, not negotiated: the driver negotiates only when a session is
	// created, and a node that is still starting rejects the newer versions,
	// so a session created during a restart would stay on v3 for good (and
	// each rejected try shows up in Cassandra's log as a "Protocol
	// exception"). v4 is all the read model needs, and every Cassandra from
	// 3.0 to 5.0 speaks it.
	c.ProtoVersion = protocolVersion
	// Reconnection after nodes went down (a restart, a rolling restart of the
	// cluster): the control connection retries every second by itself; a
	// node's pool retries 3 times a second apart, then the node is marked
	// down and retried every ReconnectInterval, and at once when a live node
	// announces it UP. The three retries (3 s) fit inside the interval, so
	// the retries do not queue up behind the ticker.
	c.ReconnectionPolicy = &gocql.ConstantReconnectionPolicy{MaxRetries: 3, Interval: time.Second}
	c.ReconnectInterval = 5 * time.Second
	return c
}

// protocolVersion is the CQL native protocol the read model speaks.
const protocolVersion = 4

// Errors of the read model, as the API and the projection tell them apart.
var (
	// ErrUnavailable: no node answered, or they are overloaded; retry.
	ErrUnavailable = errors.New("read model (Cassandra) is unavailable")
	// ErrTimeout: Cassandra did not answer in time; retry.
	ErrTimeout = errors.New("read model (Cassandra) timed out")
	// ErrRejected: Cassandra refused the request (schema, syntax,
	// permissions); retrying the same request cannot succeed.
	ErrRejected = errors.New("read model (Cassandra) rejected the request")
)

// classify wraps a Cassandra error into one of the errors above; it is the
// only place that knows gocql's error types. Unknown errors count as
// unavailable (retryable): a wrong guess costs a retry, not a lost write.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrRejected) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var reqErr gocql.RequestError
	if errors.As(err, &reqErr) {
		switch reqErr.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeConfig, gocql.ErrCodeUnauthorized,
			gocql.ErrCodeCredentials, gocql.ErrCodeAlreadyExists:
			return fmt.Errorf("%w: %v", ErrRejected, err)
		case gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout:
			return fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, gocql.ErrKeyspaceDoesNotExist):
		// Retryable: in a deployment the migration job may still be running.
		return fmt.Errorf("%w: %v (run `artifactstate migrate`)", ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, gocql.ErrTimeoutNoResponse),
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// Kind names the class of a classified error: unavailable, timeout or
// rejected (for metrics and logs).
func Kind(err error) string {
	switch {
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	}
	return "unavailable"
}

// Retryable reports whether retrying the request that failed with err may
// succeed.
func Retryable(err error) bool { return err != nil && !errors.Is(err, ErrRejected) }
