package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/entityid"
)

// keyFromQuery reads ?artifactId=&userId= of a GET.
func keyFromQuery(c *gin.Context) (entityid.Key, *apiError) {
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		return entityid.Key{}, malformed("malformed query string: %v", err)
	}
	if !q.Has("artifactId") {
		return entityid.Key{}, invalidField("artifactId", "is required")
	}
	if !q.Has("userId") {
		return entityid.Key{}, invalidField("userId", "is required")
	}
	artifactID, apiErr := parseArtifactID(q.Get("artifactId"))
	if apiErr != nil {
		return entityid.Key{}, apiErr
	}
	return newKey(q.Get("userId"), artifactID)
}

// keyFromBody reads {"artifactId": <int64>, "userId": "<string>"}. Keys match
// exactly (case-sensitive) and unknown keys are ignored, as in the original.
func keyFromBody(c *gin.Context, limit int64) (entityid.Key, *apiError) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return entityid.Key{}, bodyTooLarge(limit)
		}
		return entityid.Key{}, malformed("cannot read the request body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return entityid.Key{}, malformed(`request body must be a JSON object such as {"artifactId":1,"userId":"Mike"}`)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil {
		return entityid.Key{}, malformed("request body is not a JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return entityid.Key{}, malformed("request body has data after the JSON object")
	}
	if fields == nil {
		return entityid.Key{}, malformed("request body must be a JSON object, not null")
	}
	rawArtifact, ok := fields["artifactId"]
	if !ok {
		return entityid.Key{}, invalidField("artifactId", "is required")
	}
	if first := rawArtifact[0]; first != '-' && (first < '0' || first > '9') {
		return entityid.Key{}, invalidField("artifactId", "must be a JSON integer, got "+truncate(string(rawArtifact)))
	}
	artifactID, apiErr := parseArtifactID(string(rawArtifact))
	if apiErr != nil {
		return entityid.Key{}, apiErr
	}
	rawUser, ok := fields["userId"]
	if !ok {
		return entityid.Key{}, invalidField("userId", "is required")
	}
	userID, apiErr := decodeUserID(rawUser)
	if apiErr != nil {
		return entityid.Key{}, apiErr
	}
	return newKey(userID, artifactID)
}

// decodeUserID decodes a JSON string strictly: Go would silently turn invalid
// UTF-8 and unpaired surrogate escapes into U+FFFD, changing the ID.
func decodeUserID(raw json.RawMessage) (string, *apiError) {
	if raw[0] != '"' {
		return "", invalidField("userId", "must be a JSON string, got "+truncate(string(raw)))
	}
	if !utf8.Valid(raw) {
		return "", invalidField("userId", "must be valid UTF-8")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidField("userId", "must be a JSON string")
	}
	replaced := strings.Count(s, "\uFFFD")
	written := strings.Count(string(raw), "\uFFFD") + strings.Count(strings.ToLower(string(raw)), `\ufffd`)
	if replaced > written {
		return "", invalidField("userId", "contains an unpaired UTF-16 surrogate escape")
	}
	return s, nil
}

func parseArtifactID(s string) (int64, *apiError) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, invalidField("artifactId", "is out of range for a 64-bit signed integer: "+truncate(s))
		}
		return 0, invalidField("artifactId", "must be an integer, got "+strconv.Quote(truncate(s)))
	}
	return id, nil
}

func newKey(userID string, artifactID int64) (entityid.Key, *apiError) {
	key, err := entityid.New(userID, artifactID)
	if err != nil {
		return key, fieldError(err)
	}
	return key, nil
}

// fieldError renders a validation error of package entityid.
func fieldError(err error) *apiError {
	var fe *entityid.FieldError
	if errors.As(err, &fe) {
		return invalidField(fe.Field, fe.Reason)
	}
	return malformed("%v", err)
}

func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
