package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/artifactstate/artifactstate/workflows"
)

// DefaultArtifacts is the Gatling scenario's range of artifact IDs: [0, 500).
const DefaultArtifacts = 500

// ErrReadYourWrites is a read that did not reflect a write the same user
// had just seen acknowledged.
var ErrReadYourWrites = fmt.Errorf("%w: read-your-writes violated", ErrUnexpectedAnswer)

// Gatling is the original Gatling scenario (ArtifactStateScenario): each
// virtual user takes a random name and a random artifact ID, then calls,
// one after the other, setArtifactReadByUser, isArtifactReadByUser,
// setArtifactAddedToUserFeed, isArtifactInUserFeed,
// setArtifactRemovedFromUserFeed and getAllStates, all POSTs with the body
// { "artifactId": N, "userId": "NAME" }, each expecting 200.
//
// (The original's last request, named get_all_states, posted to
// /setArtifactReadByUser by mistake; this one calls getAllStates.)
//
// Beyond the status, the answers are checked: writes must answer
// {"success":true}, reads must answer about the pair asked, and once the
// user's setArtifactReadByUser was acknowledged its reads must say the
// artifact is read (the service promises read-your-writes).
type Gatling struct {
	Client *Client
	// Names are the user IDs to pick from (DefaultNames if empty).
	Names []string
	// Artifacts: artifact IDs are drawn from [0, Artifacts)
	// (DefaultArtifacts if zero).
	Artifacts int
	// Rand draws names and artifact IDs (a random seed if nil).
	Rand *rand.Rand
}

// User returns the calls of virtual user u; u also identifies the user's
// writes in the client's Ledger. Not safe for concurrent use (Ramp calls it
// from one goroutine).
func (g *Gatling) User(u int) []Op {
	if len(g.Names) == 0 {
		g.Names = DefaultNames()
	}
	if g.Artifacts <= 0 {
		g.Artifacts = DefaultArtifacts
	}
	if g.Rand == nil {
		g.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	p := Pair{UserID: g.Names[g.Rand.IntN(len(g.Names))], ArtifactID: int64(g.Rand.IntN(g.Artifacts))}
	c := g.Client
	readAcked := false // the user's setArtifactReadByUser was acknowledged
	setRead := c.WriteOp(workflows.SetArtifactReadByUser, p, u)
	return []Op{
		{Call: setRead.Call, Do: func(ctx context.Context) Result {
			res := setRead.Do(ctx)
			readAcked = res.Acked
			return res
		}},
		{Call: CallIsRead, Do: func(ctx context.Context) Result {
			read, res := c.Answer(ctx, CallIsRead, p)
			if res.Err == nil && readAcked && !read {
				res.Err = ErrReadYourWrites
			}
			return res
		}},
		c.WriteOp(workflows.SetArtifactAddedToUserFeed, p, u),
		c.AnswerOp(CallIsInFeed, p),
		c.WriteOp(workflows.SetArtifactRemovedFromUserFeed, p, u),
		{Call: CallGetAllStates, Do: func(ctx context.Context) Result {
			s, res := c.AllStates(ctx, p, false)
			if res.Err == nil && readAcked && !s.ArtifactRead {
				res.Err = ErrReadYourWrites
			}
			return res
		}},
	}
}
