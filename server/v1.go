package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// ReadModel is what the API reads from the Cassandra read model
// (readmodel.Store); nil when none is configured.
type ReadModel interface {
	Get(ctx context.Context, userID string, artifactID int64) (readmodel.Row, bool, error)
	Feed(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error)
	ReadArtifacts(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error)
}

// Page sizes of the list endpoints.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

type pairResponse struct {
	UserID             string `json:"userId"`
	ArtifactID         int64  `json:"artifactId"`
	ArtifactRead       bool   `json:"artifactRead"`
	ArtifactInUserFeed bool   `json:"artifactInUserFeed"`
	Version            uint64 `json:"version"`
	Consistency        string `json:"consistency"`
	// ChangedAt (eventual reads): when the projected state last changed.
	ChangedAt *time.Time `json:"changedAt,omitempty"`
	// When each flag last changed (strong reads; absent when unknown).
	ArtifactReadChangedAt       *time.Time `json:"artifactReadChangedAt,omitempty"`
	ArtifactInUserFeedChangedAt *time.Time `json:"artifactInUserFeedChangedAt,omitempty"`
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

type listResponse struct {
	UserID        string  `json:"userId"`
	ArtifactIDs   []int64 `json:"artifactIds"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

func (s *Server) routeV1(r gin.IRouter) {
	g := r.Group("/v1/users/:userId")
	g.GET("/artifacts/:artifactId", s.pair)
	g.GET("/feed", s.list(func(rm ReadModel) listFunc { return rm.Feed }))
	g.GET("/read", s.list(func(rm ReadModel) listFunc { return rm.ReadArtifacts }))
}

func (s *Server) pair(c *gin.Context) {
	artifactID, apiErr := parseArtifactID(c.Param("artifactId"))
	if apiErr != nil {
		s.render(c, apiErr)
		return
	}
	key, apiErr := newKey(c.Param("userId"), artifactID)
	if apiErr != nil {
		s.render(c, apiErr)
		return
	}
	if !s.allowed(c, key.UserID) {
		return
	}
	c.Set(keyParam, key)
	ctx, cancel := s.timeout(c)
	defer cancel()
	switch consistency := c.DefaultQuery("consistency", "strong"); consistency {
	case "strong":
		st, err := s.entities.State(ctx, key)
		if err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, pairResponse{UserID: key.UserID, ArtifactID: key.ArtifactID,
			ArtifactRead: st.ArtifactRead, ArtifactInUserFeed: st.ArtifactInUserFeed, Version: st.Version, Consistency: "strong",
			ArtifactReadChangedAt: nonZero(st.ArtifactReadChangedAt), ArtifactInUserFeedChangedAt: nonZero(st.ArtifactInUserFeedChangedAt)})
	case "eventual":
		if !s.readModelConfigured(c) {
			return
		}
		row, found, err := s.readModel.Get(ctx, key.UserID, key.ArtifactID)
		if err != nil {
			s.failReadModel(c, err)
			return
		}
		resp := pairResponse{UserID: key.UserID, ArtifactID: key.ArtifactID, ArtifactRead: row.ArtifactRead,
			ArtifactInUserFeed: row.ArtifactInUserFeed, Version: row.Version, Consistency: "eventual"}
		if found {
			resp.ChangedAt = &row.ChangedAt
		}
		writeJSON(c, http.StatusOK, resp)
	default:
		s.render(c, invalidField("consistency", `must be "strong" or "eventual", got `+strconv.Quote(truncate(consistency))))
	}
}

type listFunc func(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error)

func (s *Server) list(pick func(ReadModel) listFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		userID := c.Param("userId")
		if err := entityid.ValidateUserID(userID); err != nil {
			s.render(c, fieldError(err))
			return
		}
		if !s.allowed(c, userID) {
			return
		}
		pageSize := DefaultPageSize
		if raw, ok := c.GetQuery("pageSize"); ok {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > MaxPageSize {
				s.render(c, invalidField("pageSize", "must be an integer from 1 to "+strconv.Itoa(MaxPageSize)+", got "+strconv.Quote(truncate(raw))))
				return
			}
			pageSize = n
		}
		if !s.readModelConfigured(c) {
			return
		}
		ctx, cancel := s.timeout(c)
		defer cancel()
		page, err := pick(s.readModel)(ctx, userID, pageSize, c.Query("pageToken"))
		if err != nil {
			s.failReadModel(c, err)
			return
		}
		writeJSON(c, http.StatusOK, listResponse{UserID: userID, ArtifactIDs: page.ArtifactIDs, NextPageToken: page.Next})
	}
}

func (s *Server) readModelConfigured(c *gin.Context) bool {
	if s.readModel != nil {
		return true
	}
	s.render(c, &apiError{status: http.StatusServiceUnavailable, Code: "read_model_not_configured",
		Error: "this endpoint is served from the Cassandra read model, and none is configured (set cassandra.hosts)"})
	return false
}

func (s *Server) failReadModel(c *gin.Context, err error) {
	ctx := c.Request.Context()
	switch {
	case errors.Is(err, readmodel.ErrBadPageToken):
		s.render(c, invalidField("pageToken", "is not a token this service issued"))
	case errors.Is(err, readmodel.ErrUnavailable):
		s.logger.WarnContext(ctx, "Read model unavailable", "error", err)
		s.render(c, &apiError{status: http.StatusServiceUnavailable, Code: "unavailable",
			Error: "the read model (Cassandra) is unavailable; retry later"})
	case errors.Is(err, readmodel.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		s.logger.WarnContext(ctx, "Read model timed out", "error", err)
		s.render(c, &apiError{status: http.StatusGatewayTimeout, Code: "timeout",
			Error: "the read model (Cassandra) did not answer in time"})
	default:
		s.fail(c, err)
	}
}
