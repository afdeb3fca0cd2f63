package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
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
	for _, cmd := range workflows.CommandKinds {
		g.POST("/"+string(cmd), s.command(cmd))
	}
	// The reads: each answers from the pair's strong state.
	reads := map[string]func(pairs.State) any{
		"/isArtifactReadByUser": func(st pairs.State) any {
			return answerResponse{Answer: st.ArtifactRead, ArtifactID: st.Key.ArtifactID, UserID: st.Key.UserID}
		},
		"/isArtifactInUserFeed": func(st pairs.State) any {
			return answerResponse{Answer: st.ArtifactInUserFeed, ArtifactID: st.Key.ArtifactID, UserID: st.Key.UserID}
		},
		"/getAllStates": func(st pairs.State) any {
			return allStatesResponse{ArtifactID: st.Key.ArtifactID, ArtifactInUserFeed: st.ArtifactInUserFeed,
				ArtifactRead: st.ArtifactRead, UserID: st.Key.UserID}
		},
	}
	for path, render := range reads {
		h := s.read(render)
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

func (s *Server) command(kind workflows.CommandKind) gin.HandlerFunc {
	return s.withKey(s.keyFromBody, func(c *gin.Context) {
		c.Set(writeParam, true)
		idempotencyKey, apiErr := readIdempotencyKey(c)
		if apiErr != nil {
			s.render(c, apiErr)
			return
		}
		if _, err := s.pairs.Apply(c.Request.Context(), keyOf(c), entities.Command{Kind: kind, IdempotencyKey: idempotencyKey}); err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, commandResponse{Success: true})
	})
}

// read answers a read of the original contract with render of the pair's
// strong state.
func (s *Server) read(render func(pairs.State) any) gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.pairs.Get(c.Request.Context(), keyOf(c), pairs.Strong)
		if err != nil {
			s.fail(c, err)
			return
		}
		writeJSON(c, http.StatusOK, render(st))
	}
}
