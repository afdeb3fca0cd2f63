package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// The names of the API calls in reports: the original endpoints', plus the
// GET form of getAllStates and the read model's eventual read.
const (
	CallSetRead         = string(workflows.SetArtifactReadByUser)
	CallIsRead          = "isArtifactReadByUser"
	CallAddToFeed       = string(workflows.SetArtifactAddedToUserFeed)
	CallIsInFeed        = "isArtifactInUserFeed"
	CallRemoveFromFeed  = string(workflows.SetArtifactRemovedFromUserFeed)
	CallGetAllStates    = "getAllStates"
	CallGetAllStatesGet = "getAllStates (GET)"
	CallEventual        = "getPair (eventual)"
)

// Pair is one (user, artifact) pair.
type Pair = entityid.Key

// PairState is the state of a pair as the API answers it.
type PairState struct {
	ArtifactRead       bool `json:"artifactRead"`
	ArtifactInUserFeed bool `json:"artifactInUserFeed"`
}

func (s PairState) String() string {
	return fmt.Sprintf("read=%t inFeed=%t", s.ArtifactRead, s.ArtifactInUserFeed)
}

// StatusError is a non-200 answer of the API.
type StatusError struct {
	Status int
	// Code is the "code" of the JSON error body ("unavailable", ...), if any.
	Code string
}

func (e *StatusError) Error() string {
	if e.Code == "" {
		return strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	}
	return strconv.Itoa(e.Status) + " " + e.Code
}

// ErrUnexpectedAnswer is a 200 answer whose body is not what the contract
// says.
var ErrUnexpectedAnswer = errors.New("unexpected answer")

// ClientOptions tune the HTTP client.
type ClientOptions struct {
	// MaxConns is how many idle keep-alive connections to keep to the
	// target; set it to at least the number of concurrent calls (default
	// 100).
	MaxConns int
	// Timeout bounds each request, from sending it to reading the whole
	// answer (default 10s).
	Timeout time.Duration
}

// Client calls the API; its methods returning an Op build the load test's
// operations. Safe for concurrent use.
type Client struct {
	base string
	http *http.Client
	// grpc, when set, makes the calls over the gRPC API (NewGRPCClient).
	grpc *grpcClient
	// Ledger, when set, records every write issued by the client's write
	// operations (WriteOp), for Verify.
	Ledger *Ledger
}

// ParseTarget checks the base URL of the API (http or https, a host, no
// query) and returns it without a trailing slash.
func ParseTarget(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q must start with http:// or https://", target)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", target)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must have no query or fragment", target)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// NewClient returns a client of the API at target (e.g.
// http://localhost:8082), with keep-alive connections.
func NewClient(target string, o ClientOptions) (*Client, error) {
	base, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no global limit
	t.MaxIdleConnsPerHost = o.MaxConns
	t.IdleConnTimeout = 90 * time.Second
	return &Client{base: base, http: &http.Client{Transport: t, Timeout: o.Timeout}}, nil
}

// Close closes the idle connections.
func (c *Client) Close() {
	if c.grpc != nil {
		_ = c.grpc.conn.Close() // the only error is closing twice
		return
	}
	c.http.CloseIdleConnections()
}

// Target is the base URL the client calls (host:port for gRPC).
func (c *Client) Target() string {
	if c.grpc != nil {
		return c.grpc.target
	}
	return c.base
}

// Protocol is "http" or "grpc".
func (c *Client) Protocol() string {
	if c.grpc != nil {
		return "grpc"
	}
	return "http"
}

// pairBody is the request body exactly as the Gatling scenario sent it:
// `{ "artifactId": 42, "userId": "Smith" }`.
func pairBody(p Pair) []byte {
	user, _ := json.Marshal(p.UserID) // a string always marshals
	return []byte(`{ "artifactId": ` + strconv.FormatInt(p.ArtifactID, 10) + `, "userId": ` + string(user) + ` }`)
}

// maxAnswerBytes bounds the answer read: a fan-out of 1000 users with the
// longest IDs answers under 1 MiB, and a server may allow 10000.
const maxAnswerBytes = 16 << 20

// do sends one request and reads the whole answer. A non-200 answer is a
// *StatusError.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return c.doWith(ctx, method, path, body, nil)
}

// doWith is do with extra request headers.
func (c *Client) doWith(ctx context.Context, method, path string, body []byte, header http.Header) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(b, &e) // the code is a detail; the status says enough
		return resp.StatusCode, b, &StatusError{Status: resp.StatusCode, Code: e.Code}
	}
	return resp.StatusCode, b, nil
}

// Command sends one write and reports whether it was acknowledged
// ({"success":true}).
func (c *Client) Command(ctx context.Context, kind workflows.CommandKind, p Pair) Result {
	if c.grpc != nil {
		return c.grpc.command(ctx, kind, p)
	}
	status, body, err := c.do(ctx, http.MethodPost, "/artifactState/"+string(kind), pairBody(p))
	res := Result{Status: status, Err: err, Write: true}
	if err != nil {
		return res
	}
	var ans struct {
		Success *bool `json:"success"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.Success == nil || !*ans.Success {
		res.Err = fmt.Errorf("%w: %s did not answer {\"success\":true}", ErrUnexpectedAnswer, kind)
		return res
	}
	res.Acked = true
	return res
}

// WriteOp is the write kind on p, issued by issuer (a virtual user or
// worker; it orders the issuer's writes for Verify), recorded in c.Ledger.
func (c *Client) WriteOp(kind workflows.CommandKind, p Pair, issuer int) Op {
	return Op{Call: string(kind), Do: func(ctx context.Context) Result {
		issued := time.Now()
		res := c.Command(ctx, kind, p)
		if c.Ledger != nil {
			c.Ledger.Record(p, kind, issuer, issued, time.Now(), res)
		}
		return res
	}}
}

// Answer asks isArtifactReadByUser or isArtifactInUserFeed (call) about p,
// with a POST and the JSON body as the Gatling scenario did.
func (c *Client) Answer(ctx context.Context, call string, p Pair) (bool, Result) {
	if c.grpc != nil {
		return c.grpc.answer(ctx, call, p)
	}
	status, body, err := c.do(ctx, http.MethodPost, "/artifactState/"+call, pairBody(p))
	res := Result{Status: status, Err: err}
	if err != nil {
		return false, res
	}
	var ans struct {
		Answer     *bool  `json:"answer"`
		ArtifactID int64  `json:"artifactId"`
		UserID     string `json:"userId"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.Answer == nil {
		res.Err = fmt.Errorf("%w: %s did not answer {\"answer\":...}", ErrUnexpectedAnswer, call)
		return false, res
	}
	if ans.ArtifactID != p.ArtifactID || ans.UserID != p.UserID {
		res.Err = fmt.Errorf("%w: %s answered about another pair", ErrUnexpectedAnswer, call)
		return false, res
	}
	return *ans.Answer, res
}

// AnswerOp is Answer as an operation.
func (c *Client) AnswerOp(call string, p Pair) Op {
	return Op{Call: call, Do: func(ctx context.Context) Result {
		_, res := c.Answer(ctx, call, p)
		return res
	}}
}

// ExpectAnswerOp is AnswerOp failing with ErrReadYourWrites unless the
// answer is want.
func (c *Client) ExpectAnswerOp(call string, p Pair, want bool) Op {
	return Op{Call: call, Do: func(ctx context.Context) Result {
		got, res := c.Answer(ctx, call, p)
		if res.Err == nil && got != want {
			res.Err = ErrReadYourWrites
		}
		return res
	}}
}

// AllStates asks getAllStates (strongly consistent) about p: a POST with
// the JSON body, or a GET with query parameters (over gRPC, GetAllStates
// either way).
func (c *Client) AllStates(ctx context.Context, p Pair, get bool) (PairState, Result) {
	if c.grpc != nil {
		return c.grpc.allStates(ctx, p)
	}
	var (
		status int
		body   []byte
		err    error
	)
	if get {
		q := url.Values{"artifactId": {strconv.FormatInt(p.ArtifactID, 10)}, "userId": {p.UserID}}
		status, body, err = c.do(ctx, http.MethodGet, "/artifactState/getAllStates?"+q.Encode(), nil)
	} else {
		status, body, err = c.do(ctx, http.MethodPost, "/artifactState/getAllStates", pairBody(p))
	}
	res := Result{Status: status, Err: err}
	if err != nil {
		return PairState{}, res
	}
	state, err := decodeFlags(body, p, "getAllStates", "")
	res.Err = err
	return state, res
}

// AllStatesOp is AllStates as an operation (CallGetAllStates, or
// CallGetAllStatesGet for the GET form).
func (c *Client) AllStatesOp(p Pair, get bool) Op {
	call := CallGetAllStates
	if get {
		call = CallGetAllStatesGet
	}
	return Op{Call: call, Do: func(ctx context.Context) Result {
		_, res := c.AllStates(ctx, p, get)
		return res
	}}
}

// Eventual reads p from the read model (GET
// /v1/users/{userId}/artifacts/{artifactId}?consistency=eventual).
func (c *Client) Eventual(ctx context.Context, p Pair) (PairState, Result) {
	if c.grpc != nil {
		return c.grpc.eventual(ctx, p)
	}
	path := "/v1/users/" + url.PathEscape(p.UserID) + "/artifacts/" + strconv.FormatInt(p.ArtifactID, 10) + "?consistency=eventual"
	status, body, err := c.do(ctx, http.MethodGet, path, nil)
	res := Result{Status: status, Err: err}
	if err != nil {
		return PairState{}, res
	}
	state, err := decodeFlags(body, p, "the eventual read", "eventual")
	res.Err = err
	return state, res
}

// decodeFlags reads both flags of p from a 200 answer of what (getAllStates
// or a /v1 pair read); consistency, when not empty, must match the answer's.
func decodeFlags(body []byte, p Pair, what, consistency string) (PairState, error) {
	var ans struct {
		UserID             string `json:"userId"`
		ArtifactID         int64  `json:"artifactId"`
		ArtifactRead       *bool  `json:"artifactRead"`
		ArtifactInUserFeed *bool  `json:"artifactInUserFeed"`
		Consistency        string `json:"consistency"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.ArtifactRead == nil || ans.ArtifactInUserFeed == nil ||
		(consistency != "" && ans.Consistency != consistency) {
		return PairState{}, fmt.Errorf("%w: %s did not answer both flags", ErrUnexpectedAnswer, what)
	}
	if ans.ArtifactID != p.ArtifactID || ans.UserID != p.UserID {
		return PairState{}, fmt.Errorf("%w: %s answered about another pair", ErrUnexpectedAnswer, what)
	}
	return PairState{ArtifactRead: *ans.ArtifactRead, ArtifactInUserFeed: *ans.ArtifactInUserFeed}, nil
}

// EventualOp is Eventual as an operation.
func (c *Client) EventualOp(p Pair) Op {
	return Op{Call: CallEventual, Do: func(ctx context.Context) Result {
		_, res := c.Eventual(ctx, p)
		return res
	}}
}

// ReadModelNotConfigured reports whether err is the answer of a read-model
// endpoint of a service without read model.
func ReadModelNotConfigured(err error) bool {
	var se *StatusError
	o := apiwire.ReadModelNotConfigured
	return errors.As(err, &se) && se.Status == o.HTTPStatus && se.Code == o.HTTPCode || grpcReadModelNotConfigured(err)
}
