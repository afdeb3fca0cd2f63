package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// fanOutUsersField names the list of users of a fan-out request.
const fanOutUsersField = "userIds"

type fanOutRequest struct {
	Kind workflows.CommandKind `json:"kind"`
	// UserIDs are decoded one by one (decodeUserID), strictly.
	UserIDs []json.RawMessage `json:"userIds"`
}

// fanOutItem is one user's result: the pair's state right after the
// command, or the error the command got on that pair alone.
type fanOutItem struct {
	UserID string        `json:"userId"`
	State  *pairResponse `json:"state,omitempty"`
	Error  *apiError     `json:"error,omitempty"`
}

type fanOutResponse struct {
	ArtifactID int64                 `json:"artifactId"`
	Kind       workflows.CommandKind `json:"kind"`
	Results    []fanOutItem          `json:"results"`
	// Applied items have a state (applied now, or by an earlier call with
	// the same Idempotency-Key); Failed ones an error.
	Applied int `json:"applied"`
	Failed  int `json:"failed"`
}

// fanOut applies one command to the artifact's pair of every user listed,
// and answers each item's result in the order of the list. A bad request
// or a caller that may not use one of the pairs fails the whole call
// before anything is applied; so does a call whose deadline passed before
// its first item. Otherwise it answers 200, failed items included.
func (s *Server) fanOut(c *gin.Context) {
	c.Set(writeParam, true)
	keys, cmd, apiErr := s.fanOutRequest(c)
	if apiErr != nil {
		s.render(c, apiErr)
		return
	}
	for _, k := range keys {
		if !s.allowed(c, k.UserID) {
			return
		}
	}
	limits := s.pairs.FanOutLimits()
	s.extendWriteDeadline(c, limits.Timeout)
	results, err := s.pairs.FanOut(c.Request.Context(), keys, cmd)
	if err != nil {
		s.fail(c, err)
		return
	}
	resp := fanOutResponse{ArtifactID: keys[0].ArtifactID, Kind: cmd.Kind, Results: make([]fanOutItem, len(results))}
	for i, r := range results {
		item := fanOutItem{UserID: keys[i].UserID}
		if r.Err != nil {
			item.Error = failed(s.classify(c, r.Err))
			resp.Failed++
		} else {
			st := toPair(r.State)
			item.State = &st
			resp.Applied++
		}
		resp.Results[i] = item
	}
	writeJSON(c, http.StatusOK, resp)
}

// fanOutRequest reads and validates a fan-out request: the artifact of
// the path, the body (kind and user IDs, within api.maxFanoutBodyBytes)
// and the Idempotency-Key.
func (s *Server) fanOutRequest(c *gin.Context) ([]entityid.Key, entities.Command, *apiError) {
	var cmd entities.Command
	artifactID, apiErr := parseArtifactID(c.Param("artifactId"))
	if apiErr != nil {
		return nil, cmd, apiErr
	}
	var req fanOutRequest
	if apiErr := readJSONBody(c, s.cfg.MaxFanoutBodyBytes, &req); apiErr != nil {
		return nil, cmd, apiErr
	}
	if !req.Kind.Valid() {
		return nil, cmd, invalidField("kind", "must be "+commandNames+", got "+strconv.Quote(truncate(string(req.Kind))))
	}
	cmd.Kind = req.Kind
	userIDs := make([]string, len(req.UserIDs))
	for i, raw := range req.UserIDs {
		if userIDs[i], apiErr = decodeUserID(raw); apiErr != nil {
			return nil, cmd, renamed(apiErr, fanOutEntry(i))
		}
	}
	keys, err := s.pairs.FanOutKeys(artifactID, userIDs)
	var listErr *pairs.UserListError
	switch {
	case errors.As(err, &listErr):
		return nil, cmd, invalidField(fanOutEntry(listErr.Index), listErr.Reason)
	case err != nil:
		return nil, cmd, malformed("%v", err)
	}
	if cmd.IdempotencyKey, apiErr = readIdempotencyKey(c); apiErr != nil {
		return nil, cmd, apiErr
	}
	return keys, cmd, nil
}

// fanOutEntry names entry i of the list of users; -1 the list itself.
func fanOutEntry(i int) string {
	if i < 0 {
		return fanOutUsersField
	}
	return fanOutUsersField + "[" + strconv.Itoa(i) + "]"
}

// renamed is the invalid-field error e about field instead of e.Field.
func renamed(e *apiError, field string) *apiError {
	return invalidField(field, strings.TrimPrefix(e.Error, e.Field+": "))
}

// extendWriteDeadline lets the answer of a call that may run up to d (a
// fan-out, api.fanoutTimeout) be written up to api.writeTimeout after
// that, rather than cut off at the server's write timeout (counted from
// the request's arrival). A writer without deadlines (tests' recorders)
// has none to extend.
func (s *Server) extendWriteDeadline(c *gin.Context, d time.Duration) {
	err := http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(d + s.cfg.WriteTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.logger.WarnContext(c.Request.Context(), "Cannot extend the write deadline of a long call; its answer may be cut off at api.writeTimeout", "error", err)
	}
}
