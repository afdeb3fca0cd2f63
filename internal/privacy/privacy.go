// Package privacy keeps user IDs (personal data) out of logs and traces
// when privacy.userIds says so: each user ID becomes a keyed hash (HMAC-
// SHA-256 with a secret key: lines about one user still correlate, and
// nobody without the key can test a guess) or is dropped. It rewrites
// attributes that hold a user ID, entity workflow IDs
// (artifactstate/<artifactId>/<userId>) wherever they appear in text, and
// /v1/users/<userId> paths.
//
// What it cannot reach: Temporal itself (workflow IDs carry user IDs in its
// database, its visibility store and its Web UI) and the read model.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// Redactor rewrites user IDs. A nil *Redactor changes nothing (raw).
type Redactor struct {
	drop bool
	key  []byte
}

// Dropped replaces user IDs under privacy.userIds: drop.
const Dropped = "[user]"

// New returns the Redactor of cfg: nil for raw.
func New(cfg config.Privacy) (*Redactor, error) {
	switch cfg.UserIDs {
	case "", "raw":
		return nil, nil
	case "drop":
		return &Redactor{drop: true}, nil
	case "hash":
		key, err := config.ReadSecretFile(cfg.HashKeyFile)
		if err != nil {
			return nil, fmt.Errorf("privacy.hashKeyFile: %w", err)
		}
		if len(key) < 32 {
			return nil, fmt.Errorf("privacy.hashKeyFile: the key must be at least 32 bytes, got %d", len(key))
		}
		return &Redactor{key: []byte(key)}, nil
	}
	return nil, fmt.Errorf("privacy.userIds: must be raw, hash or drop, got %q", cfg.UserIDs)
}

// UserID is the user ID as logs may show it: u:<16 hex digits> or
// Dropped.
func (r *Redactor) UserID(id string) string {
	if r == nil {
		return id
	}
	if r.drop {
		return Dropped
	}
	mac := hmac.New(sha256.New, r.key)
	mac.Write([]byte(id))
	return "u:" + hex.EncodeToString(mac.Sum(nil)[:8])
}

// WorkflowID rewrites the user part of an entity workflow ID; other IDs
// pass unchanged.
func (r *Redactor) WorkflowID(id string) string {
	if r == nil {
		return id
	}
	key, err := entityid.Parse(id)
	if err != nil {
		return r.Text(id)
	}
	return entityid.Prefix + strconv.FormatInt(key.ArtifactID, 10) + "/" + r.UserID(key.UserID)
}

// An entity workflow ID inside free text (an error message): its encoded
// user part is printable ASCII, cut here at characters that usually end an
// ID in a message (quotes, commas, colons, brackets, spaces).
var (
	workflowIDInText = regexp.MustCompile(regexp.QuoteMeta(entityid.Prefix) + `(-?[0-9]+)/([A-Za-z0-9!#$&*+\-./<=>?@^_|~%]+)`)
	userPathInText   = regexp.MustCompile(`/v1/users/[^/?#\s"]+`)
)

// Text rewrites the workflow IDs and /v1/users/<id> paths in s.
func (r *Redactor) Text(s string) string {
	if r == nil || !strings.Contains(s, entityid.Prefix) && !strings.Contains(s, "/v1/users/") {
		return s
	}
	s = workflowIDInText.ReplaceAllStringFunc(s, func(id string) string {
		if key, err := entityid.Parse(id); err == nil {
			return entityid.Prefix + strconv.FormatInt(key.ArtifactID, 10) + "/" + r.UserID(key.UserID)
		}
		m := workflowIDInText.FindStringSubmatch(id)
		return entityid.Prefix + m[1] + "/" + r.UserID(m[2])
	})
	return userPathInText.ReplaceAllStringFunc(s, func(p string) string {
		return "/v1/users/" + r.UserID(unescapePath(strings.TrimPrefix(p, "/v1/users/")))
	})
}

func unescapePath(seg string) string {
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		if seg[i] == '%' && i+2 < len(seg) {
			if v, err := strconv.ParseUint(seg[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(seg[i])
	}
	return b.String()
}

// Attribute keys whose whole value is a user ID or an entity workflow ID.
var (
	userIDKeys     = map[string]bool{"userId": true, "userID": true, "UserID": true, "user_id": true, "enduser.id": true}
	workflowIDKeys = map[string]bool{"WorkflowID": true, "workflowID": true, "workflowId": true, "workflow_id": true,
		"temporalWorkflowID": true, "ParentWorkflowID": true}
)

// Value rewrites an attribute's string value by its key.
func (r *Redactor) Value(key, v string) string {
	switch {
	case r == nil:
		return v
	case userIDKeys[key]:
		return r.UserID(v)
	case workflowIDKeys[key]:
		return r.WorkflowID(v)
	}
	return r.Text(v)
}
