package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/workflows"
)

// CallFanOut names the fan-out call in reports.
const CallFanOut = "fanout"

// FanOutItem is one user's result of a fan-out call.
type FanOutItem struct {
	UserID string
	// State is the pair's state right after the command (when applied).
	State PairState
	// Status and Code say how the item failed, as the REST API says it
	// (over gRPC: the HTTP equivalent of its reason): 503 and
	// "unavailable", ...; 0 and "" when the item was applied.
	Status int
	Code   string
}

// Failed reports whether the item was not applied (or may not have been).
func (i FanOutItem) Failed() bool { return i.Status != 0 }

// FanOutRequest is one fan-out call: kind on ArtifactID for every user of
// UserIDs, with IdempotencyKey unless it is empty.
type FanOutRequest struct {
	ArtifactID     int64
	Kind           workflows.CommandKind
	UserIDs        []string
	IdempotencyKey string
}

// FanOut sends one fan-out call (POST /v1/artifacts/{artifactId}/fanout,
// or the gRPC API's FanOut) and returns its items, in the order of
// r.UserIDs. The Result is the call's: failed items leave it successful.
func (c *Client) FanOut(ctx context.Context, r FanOutRequest) ([]FanOutItem, Result) {
	if c.grpc != nil {
		return c.grpc.fanOut(ctx, r)
	}
	body, err := json.Marshal(struct {
		Kind    workflows.CommandKind `json:"kind"`
		UserIDs []string              `json:"userIds"`
	}{r.Kind, r.UserIDs})
	if err != nil {
		return nil, Result{Write: true, Err: err}
	}
	var header http.Header
	if r.IdempotencyKey != "" {
		header = http.Header{"Idempotency-Key": {r.IdempotencyKey}}
	}
	status, answer, err := c.doWith(ctx, http.MethodPost, "/v1/artifacts/"+strconv.FormatInt(r.ArtifactID, 10)+"/fanout", body, header)
	res := Result{Status: status, Err: err, Write: true}
	if err != nil {
		return nil, res
	}
	items, err := decodeFanOut(answer, r)
	res.Err = err
	return items, res
}

// decodeFanOut reads the items of a 200 answer to r.
func decodeFanOut(body []byte, r FanOutRequest) ([]FanOutItem, error) {
	var ans struct {
		ArtifactID int64 `json:"artifactId"`
		Results    []struct {
			UserID string `json:"userId"`
			State  *struct {
				UserID             string `json:"userId"`
				ArtifactID         int64  `json:"artifactId"`
				ArtifactRead       bool   `json:"artifactRead"`
				ArtifactInUserFeed bool   `json:"artifactInUserFeed"`
			} `json:"state"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.ArtifactID != r.ArtifactID || len(ans.Results) != len(r.UserIDs) {
		return nil, fmt.Errorf("%w: the fan-out did not answer one result per user", ErrUnexpectedAnswer)
	}
	items := make([]FanOutItem, len(ans.Results))
	for i, res := range ans.Results {
		item := FanOutItem{UserID: res.UserID}
		switch {
		case res.UserID != r.UserIDs[i]:
			return nil, fmt.Errorf("%w: the fan-out's result %d is about another user", ErrUnexpectedAnswer, i)
		case res.Error != nil:
			item.Status, item.Code = statusOfCode(res.Error.Code), res.Error.Code
		case res.State == nil || res.State.UserID != res.UserID || res.State.ArtifactID != r.ArtifactID:
			return nil, fmt.Errorf("%w: the fan-out's result %d has neither the pair's state nor an error", ErrUnexpectedAnswer, i)
		default:
			item.State = PairState{ArtifactRead: res.State.ArtifactRead, ArtifactInUserFeed: res.State.ArtifactInUserFeed}
		}
		items[i] = item
	}
	return items, nil
}

// statusOfCode is the HTTP status of an error code of the REST API (500
// for a code this client does not know).
func statusOfCode(code string) int {
	for _, o := range apiwire.Outcomes {
		if o.HTTPCode == code {
			return o.HTTPStatus
		}
	}
	return http.StatusInternalServerError
}

func (g *grpcClient) fanOut(ctx context.Context, r FanOutRequest) ([]FanOutItem, Result) {
	kind, known := pb.CommandKind_value[apiwire.CommandKindEnum(string(r.Kind))]
	if !known {
		return nil, Result{Write: true, Err: fmt.Errorf("unknown command %q", r.Kind)}
	}
	ctx, cancel := g.call(ctx)
	defer cancel()
	resp, err := g.api.FanOut(ctx, &pb.FanOutRequest{ArtifactId: r.ArtifactID, Kind: pb.CommandKind(kind), UserIds: r.UserIDs,
		IdempotencyKey: r.IdempotencyKey})
	res := grpcResult(err, true)
	if err != nil {
		return nil, res
	}
	if resp.GetArtifactId() != r.ArtifactID || len(resp.GetResults()) != len(r.UserIDs) {
		res.Err = fmt.Errorf("%w: the fan-out did not answer one result per user", ErrUnexpectedAnswer)
		return nil, res
	}
	items := make([]FanOutItem, len(r.UserIDs))
	for i, pr := range resp.GetResults() {
		if pr.GetUserId() != r.UserIDs[i] || pr.GetArtifactId() != r.ArtifactID {
			res.Err = fmt.Errorf("%w: the fan-out's result %d is about another pair", ErrUnexpectedAnswer, i)
			return nil, res
		}
		item := FanOutItem{UserID: pr.GetUserId()}
		if e := pr.GetError(); e != nil {
			item.Status, item.Code = http.StatusInternalServerError, "internal"
			if o, ok := apiwire.ByReason(e.GetReason()); ok {
				item.Status, item.Code = o.HTTPStatus, o.HTTPCode
			}
		} else if st := pr.GetState(); st == nil {
			res.Err = fmt.Errorf("%w: the fan-out's result %d has neither the pair's state nor an error", ErrUnexpectedAnswer, i)
			return nil, res
		} else {
			item.State = PairState{ArtifactRead: st.GetArtifactRead(), ArtifactInUserFeed: st.GetArtifactInUserFeed()}
		}
		items[i] = item
	}
	return items, res
}
