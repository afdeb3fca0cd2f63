package grpcapi

import (
	"errors"
	"strconv"
	"unicode/utf8"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// Request fields are named by their proto names (the names grpcurl and
// every generated client show), with the path from the request's root:
// "user_id", "pairs[3].user_id", "apply_command.kind".

// key validates a pair; prefix is the path of the message holding it.
func key(prefix, userID string, artifactID int64) (entityid.Key, error) {
	k, err := entityid.New(userID, artifactID)
	var fe *entityid.FieldError
	if errors.As(err, &fe) {
		return k, invalid(prefix+protoName(fe.Field), "%s", fe.Reason)
	}
	return k, err
}

// protoName maps the JSON field names of package entityid to proto names.
func protoName(jsonName string) string {
	switch jsonName {
	case "userId":
		return "user_id"
	case "artifactId":
		return "artifact_id"
	}
	return jsonName
}

func userID(prefix, id string) error {
	_, err := key(prefix, id, 0)
	return err
}

// commandKinds maps the proto enum's values to the commands, each named
// as apiwire.CommandKindEnum says (TestEveryCommandHasItsEnumValue).
var commandKinds = func() map[pb.CommandKind]workflows.CommandKind {
	m := map[pb.CommandKind]workflows.CommandKind{}
	for _, k := range workflows.CommandKinds {
		if v, ok := pb.CommandKind_value[apiwire.CommandKindEnum(string(k))]; ok {
			m[pb.CommandKind(v)] = k
		}
	}
	return m
}()

// commandKindNames are the enum values a request may name.
var commandKindNames = func() string {
	names := make([]string, len(workflows.CommandKinds))
	for i, k := range workflows.CommandKinds {
		names[i] = apiwire.CommandKindEnum(string(k))
	}
	return apierror.OneOf(names)
}()

func commandKind(field string, k pb.CommandKind) (workflows.CommandKind, error) {
	if kind, ok := commandKinds[k]; ok {
		return kind, nil
	}
	return "", invalid(field, "must be %s, got %s", commandKindNames, enumName(k.String(), int32(k)))
}

// consistency validates c; unspecified is def.
func consistency(field string, c pb.Consistency, def pairs.Consistency) (pairs.Consistency, error) {
	switch c {
	case pb.Consistency_CONSISTENCY_UNSPECIFIED:
		return def, nil
	case pb.Consistency_CONSISTENCY_STRONG:
		return pairs.Strong, nil
	case pb.Consistency_CONSISTENCY_EVENTUAL:
		return pairs.Eventual, nil
	}
	return "", invalid(field, "must be CONSISTENCY_STRONG or CONSISTENCY_EVENTUAL (or unspecified), got %s", enumName(c.String(), int32(c)))
}

// enumName is the value's name, or its number when the client sent one
// this server does not know (open enums keep unknown numbers).
func enumName(name string, n int32) string {
	if name == strconv.Itoa(int(n)) {
		return "unknown value " + name
	}
	return name
}

// MaxIdempotencyKey bounds an idempotency key (it is kept in the entity's
// history); the rules are the HTTP API's for its Idempotency-Key header.
const MaxIdempotencyKey = 128

// idempotencyKey validates a key; empty means none.
func idempotencyKey(field, k string) (string, error) {
	if len(k) > MaxIdempotencyKey {
		return "", invalid(field, "must be at most %d characters, got %d", MaxIdempotencyKey, len(k))
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", invalid(field, "must be printable ASCII without spaces (byte %d is %#x)", i, k[i])
		}
	}
	return k, nil
}

// pageSize validates a page size; 0 is pairs.DefaultPageSize.
func pageSize(field string, n int32, max int) (int, error) {
	if n == 0 {
		return min(pairs.DefaultPageSize, max), nil
	}
	if n < 0 || int(n) > max {
		return 0, invalid(field, "must be from 1 to %d (0: %d), got %d", max, min(pairs.DefaultPageSize, max), n)
	}
	return int(n), nil
}

// MaxCorrelationID bounds a session request's correlation_id, in bytes.
const MaxCorrelationID = 128

func correlationID(id string) error {
	if len(id) > MaxCorrelationID {
		return invalid("correlation_id", "must be at most %d bytes, got %d", MaxCorrelationID, len(id))
	}
	if !utf8.ValidString(id) {
		return invalid("correlation_id", "must be valid UTF-8")
	}
	return nil
}
