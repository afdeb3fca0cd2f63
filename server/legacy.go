package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// The original service's contract under /artifactState: field names and
// their order in the answers are part of it (clients compare bytes).

type commandResponse struct {
	Success bool `json:"success"`
}

type answerResponse struct {
	Answer     bool   `json:"answer"`
	ArtifactID int64  `json:"artifactId"`
	UserID     string `json:"userId"`
}

type allStatesResponse struct {
	ArtifactID         int64  `json:"artifactId"`
	ArtifactInUserFeed bool   `json:"artifactInUserFeed"`
	ArtifactRead       bool   `json:"artifactRead"`
	UserID             string `json:"userId"`
}

func (s *Server) routeLegacy(r gin.IRouter) {
	g := r.Group("/artifactState")
	for _, cmd := range []workflows.CommandKind{
		workflows.SetArtifactReadByUser,
		workflows.SetArtifactAddedToUserFeed,
		workflows.SetArtifactRemovedFromUserFeed,
	} {
		g.POST("/"+string(cmd), s.command(cmd))
	}
	reads := map[string]gin.HandlerFunc{
		"/isArtifactReadByUser": s.answer(s.entities.IsArtifactReadByUser),
		"/isArtifactInUserFeed": s.answer(s.entities.IsArtifactInUserFeed),
		"/getAllStates":         s.allStates,
	}
	for path, h := range reads {
		g.GET(path, s.withKey(keyFromQuery, h))
		g.POST(path, s.withKey(s.keyFromBody, h))
	}
}

type keyReader func(*gin.Context) (entityid.Key, *apiError)

const keyParam = "artifactstate.key"

// withKey reads and validates the pair before h runs.
func (s *Server) withKey(read keyReader, h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		key, apiErr := read(c)
		if apiErr != nil {
			s.render(c, apiErr)
			return
		}
		if !s.allowed(c, key.UserID) {
			return
		}
		c.Set(keyParam, key)
		h(c)
	}
}

func (s *Server) keyFromBody(c *gin.Context) (entityid.Key, *apiError) {
	return keyFromBody(c, s.cfg.MaxBodyBytes)
}

func keyOf(c *gin.Context) entityid.Key {
	return c.MustGet(keyParam).(entityid.Key)
}

// timeout bounds the request's calls to Temporal.
func (s *Server) timeout(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
}

func (s *Server) command(kind workflows.CommandKind) gin.HandlerFunc {
	return s.withKey(s.keyFromBody, func(c *gin.Context) {
		c.Set(writeParam, true)
		idempotencyKey, apiErr := readIdempotencyKey(c)
		if apiErr != nil {
			s.render(c, apiErr)
			return
		}
		ctx, cancel := s.timeout(c)
		defer cancel()
		if _, err := s.entities.Apply(ctx, keyOf(c), entities.Command{Kind: kind, IdempotencyKey: idempotencyKey}); err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, commandResponse{Success: true})
	})
}

func (s *Server) answer(ask func(context.Context, entityid.Key) (bool, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := s.timeout(c)
		defer cancel()
		key := keyOf(c)
		v, err := ask(ctx, key)
		if err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, answerResponse{Answer: v, ArtifactID: key.ArtifactID, UserID: key.UserID})
	}
}

func (s *Server) allStates(c *gin.Context) {
	ctx, cancel := s.timeout(c)
	defer cancel()
	key := keyOf(c)
	st, err := s.entities.State(ctx, key)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, allStatesResponse{
		ArtifactID: key.ArtifactID, ArtifactInUserFeed: st.ArtifactInUserFeed,
		ArtifactRead: st.ArtifactRead, UserID: key.UserID,
	})
}
