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

	"github.com/artifactstate/artifactstate/internal/apiwire"
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

// readJSONBody decodes a JSON object body into v (unknown keys are errors).
func readJSONBody(c *gin.Context, limit int64, v any) *apiError {
	raw, apiErr := readBody(c, limit)
	if apiErr != nil {
		return apiErr
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("request body is not the JSON object this endpoint takes: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("request body has data after the JSON object")
	}
	return nil
}

// readBody reads a non-empty body of at most limit bytes. A body that
// cannot be read (the client went away mid-body) is not the client's
// mistake in the request's content: it answers 400 only for bad bodies.
func readBody(c *gin.Context, limit int64) ([]byte, *apiError) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, bodyTooLarge(limit)
		}
		return nil, answer(apiwire.Cancelled, "the request body could not be read: "+err.Error())
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, malformed(`request body must be a JSON object`)
	}
	return raw, nil
}

// keyFromBody reads {"artifactId": <int64>, "userId": "<string>"}. Keys match
// exactly (case-sensitive) and unknown keys are ignored, as in the original.
func keyFromBody(c *gin.Context, limit int64) (entityid.Key, *apiError) {
	raw, apiErr := readBody(c, limit)
	if apiErr != nil {
		if apiErr.Code == "malformed_request" {
			apiErr.Error = `request body must be a JSON object such as {"artifactId":1,"userId":"Mike"}`
		}
		return entityid.Key{}, apiErr
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

// IdempotencyKeyHeader makes a write apply at most once: a retry with the
// same key answers the first result.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKey bounds the key (it is kept in the entity's history).
const maxIdempotencyKey = 128

// readIdempotencyKey returns the request's Idempotency-Key, "" if none.
func readIdempotencyKey(c *gin.Context) (string, *apiError) {
	values := c.Request.Header.Values(IdempotencyKeyHeader)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", invalidField(IdempotencyKeyHeader, "must be sent once")
	}
	key := values[0]
	if key == "" || len(key) > maxIdempotencyKey {
		return "", invalidField(IdempotencyKeyHeader, "must be 1 to "+strconv.Itoa(maxIdempotencyKey)+" characters")
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return "", invalidField(IdempotencyKeyHeader, "must be printable ASCII without spaces")
		}
	}
	return key, nil
}
