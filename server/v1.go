package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
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

func toPair(st pairs.State) pairResponse {
	return pairResponse{UserID: st.Key.UserID, ArtifactID: st.Key.ArtifactID, ArtifactRead: st.ArtifactRead,
		ArtifactInUserFeed: st.ArtifactInUserFeed, Version: st.Version, Consistency: string(st.Consistency),
		ChangedAt: nonZero(st.ChangedAt), ArtifactReadChangedAt: nonZero(st.ArtifactReadChangedAt),
		ArtifactInUserFeedChangedAt: nonZero(st.ArtifactInUserFeedChangedAt)}
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
	// Items (include=state): each artifact's state, in the same order.
	Items []batchItem `json:"items,omitempty"`
}

// commandNames are the command kinds a command request may name.
var commandNames = func() string {
	names := make([]string, len(workflows.CommandKinds))
	for i, k := range workflows.CommandKinds {
		names[i] = string(k)
	}
	return apierror.OneOf(names)
}()

type commandRequest struct {
	Kind workflows.CommandKind `json:"kind"`
}

type batchRequest struct {
	Consistency string `json:"consistency"`
	Pairs       []struct {
		UserID     *string          `json:"userId"`
		ArtifactID *json.RawMessage `json:"artifactId"`
	} `json:"pairs"`
}

// batchItem is one pair of a batch answer: a pairResponse, or a
// batchError.
type batchItem = any

// batchError is a pair of a batch that could not be read.
type batchError struct {
	UserID     string    `json:"userId"`
	ArtifactID int64     `json:"artifactId"`
	Error      *apiError `json:"error"`
}

type batchResponse struct {
	Results []batchItem `json:"results"`
}

// preconditionFailed is the 412 answer of a conditional write.
type preconditionFailed struct {
	Code    string       `json:"code"`
	Error   string       `json:"error"`
	Current pairResponse `json:"current"`
}

func (s *Server) routeV1(r gin.IRouter) {
	g := r.Group("/v1/users/:userId")
	g.GET("/artifacts/:artifactId", s.pair)
	g.POST("/artifacts/:artifactId/commands", s.pairCommand)
	g.GET("/feed", s.feed)
	g.GET("/read", s.readList)
	r.POST("/v1/batch-get", s.batchGet)
	r.POST("/v1/artifacts/:artifactId/fanout", s.fanOut)
}

// pathKey reads the pair of /v1/users/{userId}/artifacts/{artifactId}.
func (s *Server) pathKey(c *gin.Context) (entityid.Key, bool) {
	artifactID, apiErr := parseArtifactID(c.Param("artifactId"))
	if apiErr == nil {
		var key entityid.Key
		key, apiErr = newKey(c.Param("userId"), artifactID)
		if apiErr == nil {
			if !s.allowed(c, key.UserID) {
				return entityid.Key{}, false
			}
			c.Set(keyParam, key)
			return key, true
		}
	}
	s.render(c, apiErr)
	return entityid.Key{}, false
}

func (s *Server) pair(c *gin.Context) {
	key, ok := s.pathKey(c)
	if !ok {
		return
	}
	consistency, err := pairs.ParseConsistency(c.Query("consistency"))
	if err != nil {
		s.render(c, invalidField("consistency", err.Error()))
		return
	}
	st, err := s.pairs.Get(c.Request.Context(), key, consistency)
	if err != nil {
		s.fail(c, err)
		return
	}
	if consistency == pairs.Strong {
		c.Header("ETag", etag(st.Version))
	}
	writeJSON(c, http.StatusOK, toPair(st))
}

// pairCommand applies one command and answers the state right after it.
// Idempotency-Key makes a retry apply at most once; If-Match applies the
// command only at that version (412 with the current state otherwise).
func (s *Server) pairCommand(c *gin.Context) {
	c.Set(writeParam, true)
	key, ok := s.pathKey(c)
	if !ok {
		return
	}
	var req commandRequest
	if apiErr := readJSONBody(c, s.cfg.MaxBodyBytes, &req); apiErr != nil {
		s.render(c, apiErr)
		return
	}
	if !req.Kind.Valid() {
		s.render(c, invalidField("kind", "must be "+commandNames+", got "+strconv.Quote(truncate(string(req.Kind)))))
		return
	}
	cmd := entities.Command{Kind: req.Kind}
	var apiErr *apiError
	if cmd.IdempotencyKey, apiErr = readIdempotencyKey(c); apiErr != nil {
		s.render(c, apiErr)
		return
	}
	if cmd.IfVersion, apiErr = readIfMatch(c); apiErr != nil {
		s.render(c, apiErr)
		return
	}
	st, err := s.pairs.Apply(c.Request.Context(), key, cmd)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", etag(st.Version))
	writeJSON(c, http.StatusOK, toPair(st))
}

// maxBatchBody bounds a batch request: room for MaxBatch pairs whose user
// IDs are as long, and as escaped, as they may be.
const maxBatchBody = pairs.MaxBatch * 2 << 10

func (s *Server) batchGet(c *gin.Context) {
	var req batchRequest
	if apiErr := readJSONBody(c, max(s.cfg.MaxBodyBytes, maxBatchBody), &req); apiErr != nil {
		s.render(c, apiErr)
		return
	}
	consistency, err := pairs.ParseConsistency(req.Consistency)
	if err != nil {
		s.render(c, invalidField("consistency", err.Error()))
		return
	}
	if len(req.Pairs) == 0 || len(req.Pairs) > pairs.MaxBatch {
		s.render(c, invalidField("pairs", "must hold 1 to "+strconv.Itoa(pairs.MaxBatch)+" pairs, got "+strconv.Itoa(len(req.Pairs))))
		return
	}
	keys := make([]entityid.Key, len(req.Pairs))
	for i, p := range req.Pairs {
		field := "pairs[" + strconv.Itoa(i) + "]."
		if p.UserID == nil || p.ArtifactID == nil {
			s.render(c, invalidField(field+"userId", "and "+field+"artifactId are required"))
			return
		}
		raw := strings.TrimSpace(string(*p.ArtifactID))
		artifactID, apiErr := parseArtifactID(raw)
		if apiErr == nil {
			keys[i], apiErr = newKey(*p.UserID, artifactID)
		}
		if apiErr != nil {
			apiErr.Field = field + apiErr.Field
			apiErr.Error = field + apiErr.Error
			s.render(c, apiErr)
			return
		}
		if !s.allowed(c, keys[i].UserID) {
			return
		}
	}
	results, err := s.pairs.BatchGet(c.Request.Context(), keys, consistency)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, batchResponse{Results: s.batchItems(c, results)})
}

// batchItems renders each result, an error as the error body the pair would
// have got on its own.
func (s *Server) batchItems(c *gin.Context, results []pairs.Result) []batchItem {
	out := make([]batchItem, len(results))
	for i, r := range results {
		if r.Err != nil {
			out[i] = batchError{UserID: r.State.Key.UserID, ArtifactID: r.State.Key.ArtifactID, Error: failed(s.classify(c, r.Err))}
			continue
		}
		out[i] = toPair(r.State)
	}
	return out
}

func (s *Server) feed(c *gin.Context) {
	userID, pageSize, pageToken, ok := s.listParams(c)
	if !ok {
		return
	}
	withState := false
	switch include := c.Query("include"); include {
	case "":
	case "state":
		withState = true
		if pageSize > pairs.MaxPageSizeWithState {
			s.render(c, invalidField("pageSize", "must be at most "+strconv.Itoa(pairs.MaxPageSizeWithState)+" with include=state"))
			return
		}
	default:
		s.render(c, invalidField("include", `must be "state" or absent, got `+strconv.Quote(truncate(include))))
		return
	}
	consistency, err := pairs.ParseConsistency(c.DefaultQuery("consistency", string(pairs.Eventual)))
	if err != nil {
		s.render(c, invalidField("consistency", err.Error()))
		return
	}
	page, err := s.pairs.Feed(c.Request.Context(), userID, pageSize, pageToken, withState, consistency)
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := listResponse{UserID: userID, ArtifactIDs: page.ArtifactIDs, NextPageToken: page.Next}
	if withState {
		resp.Items = s.batchItems(c, page.States)
	}
	writeJSON(c, http.StatusOK, resp)
}

func (s *Server) readList(c *gin.Context) {
	userID, pageSize, pageToken, ok := s.listParams(c)
	if !ok {
		return
	}
	page, err := s.pairs.ReadArtifacts(c.Request.Context(), userID, pageSize, pageToken)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, listResponse{UserID: userID, ArtifactIDs: page.ArtifactIDs, NextPageToken: page.Next})
}

func (s *Server) listParams(c *gin.Context) (userID string, pageSize int, pageToken string, ok bool) {
	userID = c.Param("userId")
	if err := entityid.ValidateUserID(userID); err != nil {
		s.render(c, fieldError(err))
		return "", 0, "", false
	}
	if !s.allowed(c, userID) {
		return "", 0, "", false
	}
	pageSize = pairs.DefaultPageSize
	if raw, has := c.GetQuery("pageSize"); has {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > pairs.MaxPageSize {
			s.render(c, invalidField("pageSize", "must be an integer from 1 to "+strconv.Itoa(pairs.MaxPageSize)+", got "+strconv.Quote(truncate(raw))))
			return "", 0, "", false
		}
		pageSize = n
	}
	return userID, pageSize, c.Query("pageToken"), true
}

// etag is the strong entity tag of a state version.
func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// readIfMatch reads If-Match: one strong entity tag, a version as strong
// reads and writes return it in ETag ("3"; the quotes may be left out).
func readIfMatch(c *gin.Context) (*uint64, *apiError) {
	values := c.Request.Header.Values("If-Match")
	if len(values) == 0 {
		return nil, nil
	}
	raw := strings.TrimSpace(strings.Join(values, ","))
	unquoted := strings.TrimSuffix(strings.TrimPrefix(raw, `"`), `"`)
	v, err := strconv.ParseUint(unquoted, 10, 64)
	if err != nil || strings.HasPrefix(raw, "W/") {
		return nil, invalidField("If-Match", `must be one version as the ETag gives it, such as "3", got `+strconv.Quote(truncate(raw)))
	}
	return &v, nil
}
