package upgrade

import (
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

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Entity is one pair the driver created, with the flags it must read.
type Entity struct {
	Shape string
	Key   entityid.Key
	// Read and InFeed are what every acknowledged write says the pair holds.
	Read, InFeed bool
	// Closed: an operator terminated its run and nothing wrote since.
	Closed bool
	// Written: it has a workflow (a never-written pair has none).
	Written bool
	keys    []string // idempotency keys sent
}

// apply is the command's effect on the expected flags.
func (e *Entity) apply(kind workflows.CommandKind) {
	switch kind {
	case workflows.SetArtifactReadByUser:
		e.Read = true
	case workflows.SetArtifactAddedToUserFeed:
		e.InFeed = true
	case workflows.SetArtifactRemovedFromUserFeed:
		e.InFeed = false
	}
	e.Written, e.Closed = true, false
}

// Driver drives a running stack's API (of whichever release serves it) and
// keeps what each entity must read.
type Driver struct {
	API      string
	Temporal client.Client
	// ReadModel makes the read model reject projections for a while (the
	// paused-projection shape); nil skips that shape.
	ReadModel *ReadModelFault
	http      *http.Client
	v1        bool // the release serves /v1 commands (Idempotency-Key, If-Match)
	Entities  []*Entity
}

// NewDriver probes what the API serves.
func NewDriver(ctx context.Context, api string, c client.Client, rm *ReadModelFault) (*Driver, error) {
	d := &Driver{API: api, Temporal: c, ReadModel: rm, http: &http.Client{Timeout: 30 * time.Second}}
	status, body, _, err := d.do(ctx, http.MethodGet, "/openapi.yaml", "", nil)
	if err != nil {
		return nil, err
	}
	d.v1 = status == http.StatusOK && strings.Contains(body, "/commands") && strings.Contains(body, "If-Match")
	return d, nil
}

const (
	read   = workflows.SetArtifactReadByUser
	add    = workflows.SetArtifactAddedToUserFeed
	remove = workflows.SetArtifactRemovedFromUserFeed
)

// shape creates one kind of entity; it returns false when the release
// cannot make it.
type shape struct {
	name string
	make func(ctx context.Context, d *Driver, e *Entity) (bool, error)
}

func commands(kinds ...workflows.CommandKind) func(context.Context, *Driver, *Entity) (bool, error) {
	return func(ctx context.Context, d *Driver, e *Entity) (bool, error) {
		for _, k := range kinds {
			if err := d.Write(ctx, e, k); err != nil {
				return false, err
			}
		}
		return true, nil
	}
}

// Shapes are the entities of every shape production holds: each command,
// repeated commands, an ID that needs escaping, idempotency keys,
// conditional writes, a continue-as-new chain, a paused projection, a
// terminated entity and a terminated one written again (re-created), and a
// pair never written.
var shapes = []shape{
	{"read", commands(read)},
	{"add", commands(add)},
	{"remove", commands(remove)},
	{"all-commands", commands(read, add, remove, add)},
	{"repeated", commands(read, read, add, add, remove, remove)},
	{"escaped", commands(add, read)},
	{"idempotency-key", idempotencyKey},
	{"if-match", ifMatch},
	{"chain", chain},
	{"paused-projection", pausedProjection},
	{"terminated", terminated},
	{"recreated", recreated},
	{"never-written", func(context.Context, *Driver, *Entity) (bool, error) { return true, nil }},
}

// CreateShapes creates one entity of every shape the release can make.
func (d *Driver) CreateShapes(ctx context.Context) error {
	for _, s := range shapes {
		e := &Entity{Shape: s.name, Key: entityid.Key{UserID: "upgrade-" + s.name, ArtifactID: 1}}
		if s.name == "escaped" {
			e.Key = entityid.Key{UserID: `Zoë/"quoted" user ✓`, ArtifactID: -42}
		}
		ok, err := s.make(ctx, d, e)
		if err != nil {
			return fmt.Errorf("shape %s: %w", s.name, err)
		}
		if ok {
			d.Entities = append(d.Entities, e)
		}
	}
	return nil
}

func idempotencyKey(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	if !d.v1 {
		return false, nil
	}
	for _, step := range []struct {
		kind workflows.CommandKind
		key  string
	}{{add, "first-add"}, {remove, ""}, {add, "first-add"}} {
		if err := d.command(ctx, e, step.kind, step.key, nil); err != nil {
			return false, err
		}
	}
	return true, nil
}

func ifMatch(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	if !d.v1 {
		return false, nil
	}
	if err := d.Write(ctx, e, read); err != nil {
		return false, err
	}
	version, err := d.version(ctx, e)
	if err != nil {
		return false, err
	}
	if err := d.command(ctx, e, add, "", &version); err != nil {
		return false, err
	}
	stale := version // the add moved the version on: this one must not apply
	status, body, _, err := d.do(ctx, http.MethodPost, commandsPath(e.Key), `{"kind":"`+string(remove)+`"}`,
		map[string]string{"If-Match": strconv.Quote(strconv.FormatUint(stale, 10))})
	if err != nil {
		return false, err
	}
	if status != http.StatusPreconditionFailed {
		return false, fmt.Errorf("a stale If-Match answered %d %s, want 412", status, body)
	}
	return true, nil
}

// chain writes enough for several runs under the stack's history budget.
func chain(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	kinds := []workflows.CommandKind{add, remove, read}
	for i := range 45 {
		if err := d.Write(ctx, e, kinds[i%3]); err != nil {
			return false, err
		}
	}
	return true, nil
}

// pausedProjection writes while the read model rejects every projection:
// the entity pauses its projection, and projects again after the next
// command or pause.
func pausedProjection(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	if d.ReadModel == nil {
		return false, nil
	}
	restore, err := d.ReadModel.Reject(ctx)
	if err != nil {
		return false, err
	}
	werr := d.Write(ctx, e, read)
	if werr == nil {
		werr = waitRejected(ctx, d.Temporal, e.Key)
	}
	if err := restore(ctx); err != nil {
		return false, errors.Join(werr, err)
	}
	return werr == nil, werr
}

// terminated: an operator terminates the entity; nothing writes after.
func terminated(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	if err := d.Write(ctx, e, add); err != nil {
		return false, err
	}
	if err := d.Temporal.TerminateWorkflow(ctx, e.Key.WorkflowID(), "", "upgrade test: terminated by an operator"); err != nil {
		return false, err
	}
	e.Closed = true
	return true, nil
}

// recreated: terminated, then written again (the API starts it again from
// its last state).
func recreated(ctx context.Context, d *Driver, e *Entity) (bool, error) {
	if ok, err := terminated(ctx, d, e); !ok || err != nil {
		return ok, err
	}
	return true, d.Write(ctx, e, read)
}

// Write sends kind through the original API (every release serves it),
// retrying while the release is unavailable (a worker restarting): every
// command is idempotent when repeated right away.
func (d *Driver) Write(ctx context.Context, e *Entity, kind workflows.CommandKind) error {
	return d.retry(ctx, func() (bool, error) {
		status, body, _, err := d.do(ctx, http.MethodPost, "/artifactState/"+string(kind), pairJSON(e.Key), nil)
		if err != nil {
			return false, err
		}
		if retryable(status, body) {
			return false, lastAnswer{status, body}
		}
		if status != http.StatusOK || body != `{"success":true}` {
			return false, fmt.Errorf("%s %s: %d %s", kind, e.Key, status, body)
		}
		e.apply(kind)
		return true, nil
	})
}

// command sends kind through /v1 with an idempotency key and If-Match when
// given; a keyed command already applied applies nothing.
func (d *Driver) command(ctx context.Context, e *Entity, kind workflows.CommandKind, key string, ifVersion *uint64) error {
	headers := map[string]string{}
	if key != "" {
		headers["Idempotency-Key"] = key
	}
	if ifVersion != nil {
		headers["If-Match"] = strconv.Quote(strconv.FormatUint(*ifVersion, 10))
	}
	seen := map[string]bool{}
	for _, past := range e.keys {
		seen[past] = true
	}
	return d.retry(ctx, func() (bool, error) {
		status, body, _, err := d.do(ctx, http.MethodPost, commandsPath(e.Key), `{"kind":"`+string(kind)+`"}`, headers)
		if err != nil {
			return false, err
		}
		if retryable(status, body) {
			return false, lastAnswer{status, body}
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("%s %s: %d %s", kind, e.Key, status, body)
		}
		if key == "" || !seen[key] {
			e.apply(kind)
		}
		if key != "" {
			e.keys = append(e.keys, key)
		}
		return true, nil
	})
}

// version is the pair's version (the ETag of a strong /v1 read).
func (d *Driver) version(ctx context.Context, e *Entity) (uint64, error) {
	var v uint64
	err := d.retry(ctx, func() (bool, error) {
		status, body, etag, err := d.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(e.Key.UserID)+"/artifacts/"+
			strconv.FormatInt(e.Key.ArtifactID, 10), "", nil)
		if err != nil {
			return false, err
		}
		if retryable(status, body) {
			return false, lastAnswer{status, body}
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("read %s: %d %s", e.Key, status, body)
		}
		v, err = strconv.ParseUint(strings.Trim(etag, `"`), 10, 64)
		return err == nil, err
	})
	return v, err
}

// Check reads every entity (a strong read through the original API) and
// compares it with what its acknowledged writes said.
func (d *Driver) Check(ctx context.Context) error {
	var errs []error
	for _, e := range d.Entities {
		if err := d.check(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) check(ctx context.Context, e *Entity) error {
	return d.retry(ctx, func() (bool, error) {
		q := url.Values{"artifactId": {strconv.FormatInt(e.Key.ArtifactID, 10)}, "userId": {e.Key.UserID}}
		status, body, _, err := d.do(ctx, http.MethodGet, "/artifactState/getAllStates?"+q.Encode(), "", nil)
		if err != nil {
			return false, err
		}
		if retryable(status, body) {
			return false, lastAnswer{status, body}
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("read %s (%s): %d %s", e.Key, e.Shape, status, body)
		}
		var got struct {
			Read   bool `json:"artifactRead"`
			InFeed bool `json:"artifactInUserFeed"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			return false, err
		}
		if got.Read != e.Read || got.InFeed != e.InFeed {
			return false, fmt.Errorf("%s (%s) reads read=%v inFeed=%v, its writes said read=%v inFeed=%v",
				e.Key, e.Shape, got.Read, got.InFeed, e.Read, e.InFeed)
		}
		return true, nil
	})
}

// WriteAll sends one command to every entity but the never-written one
// (a terminated entity is re-created by it).
func (d *Driver) WriteAll(ctx context.Context, kind workflows.CommandKind) error {
	for _, e := range d.Entities {
		if e.Shape == "never-written" {
			continue
		}
		if err := d.Write(ctx, e, kind); err != nil {
			return err
		}
	}
	return nil
}

// Keys are the pairs that have workflows.
func (d *Driver) Keys() []entityid.Key {
	var out []entityid.Key
	for _, e := range d.Entities {
		if e.Written {
			out = append(out, e.Key)
		}
	}
	return out
}

// OpenKeys are the pairs whose current run is open.
func (d *Driver) OpenKeys() []entityid.Key {
	var out []entityid.Key
	for _, e := range d.Entities {
		if e.Written && !e.Closed {
			out = append(out, e.Key)
		}
	}
	return out
}

// retry runs op until it is done, fails, or a minute passes: a release
// restarting answers 503/504 for a while.
func (d *Driver) retry(ctx context.Context, op func() (done bool, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		done, err := op()
		if done {
			return nil
		}
		var answer lastAnswer
		if err != nil && !isTransportError(err) && !errors.As(err, &answer) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still unavailable after a minute (last error: %v)", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *Driver) do(ctx context.Context, method, path, body string, headers map[string]string) (status int, text, etag string, err error) {
	req, err := http.NewRequestWithContext(ctx, method, d.API+path, strings.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, "", "", transportError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", "", transportError{err}
	}
	return resp.StatusCode, string(b), resp.Header.Get("ETag"), nil
}

// transportError is a failed HTTP exchange (the API restarting), retried.
type transportError struct{ error }

func isTransportError(err error) bool {
	var t transportError
	return errors.As(err, &t)
}

// retryable says whether an answer comes from a release restarting (503
// unavailable, 504) rather than from the entity: 503 entity_unavailable is
// an entity whose workflow task keeps failing (the build cannot replay
// it), which no retry mends.
func retryable(status int, body string) bool {
	if status == http.StatusServiceUnavailable {
		return !strings.Contains(body, `"entity_unavailable"`)
	}
	return status == http.StatusGatewayTimeout
}

// lastAnswer remembers a retried answer for the error message.
type lastAnswer struct {
	status int
	body   string
}

func (a lastAnswer) Error() string { return fmt.Sprintf("answered %d %s", a.status, a.body) }

func pairJSON(k entityid.Key) string {
	user, _ := json.Marshal(k.UserID) // a string always encodes
	return fmt.Sprintf(`{"artifactId":%d,"userId":%s}`, k.ArtifactID, user)
}

func commandsPath(k entityid.Key) string {
	return "/v1/users/" + url.PathEscape(k.UserID) + "/artifacts/" + strconv.FormatInt(k.ArtifactID, 10) + "/commands"
}
