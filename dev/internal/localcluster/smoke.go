package localcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/workflows"
)

// probePair is the one entity `up` writes to prove the cluster works end
// to end (idempotent: every `up` sets the same flag again).
var probePair = loadtest.Pair{UserID: "localcluster-probe", ArtifactID: 0}

// smokeTest writes through the first api node, then reads through every
// api node (the entity, strongly) and from the read model (eventually):
// the whole chain of API, frontend, history, matching, worker, projection
// and ring.
func (c *Cluster) smokeTest(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	urls := c.APIURLs()
	clients := make([]*loadtest.Client, len(urls))
	for i, u := range urls {
		cl, err := loadtest.NewClient(u, loadtest.ClientOptions{MaxConns: 2, Timeout: 15 * time.Second})
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}
	// retry retries fn while it fails to get an answer; a wrong answer
	// (a permanent error) fails at once.
	retry := func(what string, fn func() error) error {
		var last error
		for {
			if last = fn(); last == nil {
				return nil
			}
			var p permanent
			if errors.As(last, &p) {
				return fmt.Errorf("%s: %w", what, last)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", what, last)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if err := retry("write through "+urls[0], func() error {
		return clients[0].Command(ctx, workflows.SetArtifactReadByUser, probePair).Err
	}); err != nil {
		return err
	}
	for i, cl := range clients {
		if err := retry("strong read through "+urls[i], func() error {
			s, res := cl.AllStates(ctx, probePair, true)
			if res.Err == nil && !s.ArtifactRead {
				return permanent{fmt.Errorf("the strong read answered %v after the write was acknowledged", s)}
			}
			return res.Err
		}); err != nil {
			return err
		}
	}
	return retry("eventual read from the read model", func() error {
		s, res := clients[len(clients)-1].Eventual(ctx, probePair)
		if res.Err == nil && !s.ArtifactRead {
			return fmt.Errorf("the read model has %v", s)
		}
		return res.Err
	})
}

// permanent marks an error retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }
