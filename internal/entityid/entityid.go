// Package entityid validates the identity of one (user, artifact) pair and
// maps it to and from its Temporal workflow ID.
//
// The workflow ID of a pair is
//
//	artifactstate/<artifactId>/<escaped userId>
//
// where <artifactId> is the canonical base-10 form of the int64 (no '+', no
// leading zeros) and <escaped userId> is the user ID's UTF-8 bytes with every
// byte outside '!'..'~' and every '%' written as %XX (upper-case hex), so
// "Mike" stays "Mike", "Mike Smith" becomes "Mike%20Smith" and "山" becomes
// "%E5%B1%B1". Workflow IDs travel in gRPC headers, which take printable ASCII
// only; hence the escaping.
//
// The mapping is injective: the artifact ID is canonical and never contains
// '/', so the first '/' after the prefix ends it, and the escaping is
// reversible and canonical. (1, "1Mike") → "artifactstate/1/1Mike" and
// (11, "Mike") → "artifactstate/11/Mike" are different entities (the original
// Akka service glued the parts together and confused them).
package entityid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserIDBytes is the longest user ID accepted, in bytes of UTF-8 (256
// ASCII characters, 85 CJK ones). Even fully escaped (3 bytes per byte) the
// workflow ID stays under Temporal's default limit of 1000 bytes.
const MaxUserIDBytes = 256

// Prefix starts every entity workflow ID; it lets operators list entities
// (`WorkflowId STARTS_WITH "artifactstate/"`).
const Prefix = "artifactstate/"

// Key identifies one (user, artifact) pair.
type Key struct {
	UserID     string
	ArtifactID int64
}

// FieldError reports an invalid field of a request; Field is the JSON name.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// New validates userID and returns the key of the pair.
func New(userID string, artifactID int64) (Key, error) {
	if err := ValidateUserID(userID); err != nil {
		return Key{}, err
	}
	return Key{UserID: userID, ArtifactID: artifactID}, nil
}

// ValidateUserID accepts non-empty, valid UTF-8 of at most MaxUserIDBytes
// bytes made of printable characters: letters, marks, numbers, punctuation,
// symbols, spaces, and format characters such as the zero-width joiner used in
// emoji. Control characters, line/paragraph separators, private-use and
// unassigned code points are rejected.
func ValidateUserID(userID string) error {
	switch {
	case userID == "":
		return &FieldError{Field: "userId", Reason: "must not be empty"}
	case len(userID) > MaxUserIDBytes:
		return &FieldError{Field: "userId", Reason: fmt.Sprintf("must be at most %d bytes of UTF-8, got %d", MaxUserIDBytes, len(userID))}
	case !utf8.ValidString(userID):
		return &FieldError{Field: "userId", Reason: "must be valid UTF-8"}
	}
	for i, r := range userID {
		if !printable(r) {
			return &FieldError{Field: "userId", Reason: fmt.Sprintf("contains a non-printable character %U at byte %d", r, i)}
		}
	}
	return nil
}

func printable(r rune) bool {
	// IsGraphic covers L, M, N, P, S and Zs; Cf adds joiners and the like.
	return unicode.IsGraphic(r) || unicode.Is(unicode.Cf, r)
}

// WorkflowID returns the entity workflow ID of the pair (see the package doc).
func (k Key) WorkflowID() string {
	return Prefix + strconv.FormatInt(k.ArtifactID, 10) + "/" + escape(k.UserID)
}

const hexDigits = "0123456789ABCDEF"

func keepsAsIs(b byte) bool { return b >= '!' && b <= '~' && b != '%' }

func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepsAsIs(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// unescape reverses escape and rejects every string escape cannot produce.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case keepsAsIs(c):
			b.WriteByte(c)
		case c == '%' && i+2 < len(s):
			hi, lo := strings.IndexByte(hexDigits, s[i+1]), strings.IndexByte(hexDigits, s[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("bad escape %q", s[i:i+3])
			}
			v := byte(hi<<4 | lo)
			if keepsAsIs(v) {
				return "", fmt.Errorf("needless escape %q", s[i:i+3])
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", fmt.Errorf("byte %#x at %d is neither printable ASCII nor a valid escape", c, i)
		}
	}
	return b.String(), nil
}

// String is the workflow ID; it makes keys readable in logs.
func (k Key) String() string { return k.WorkflowID() }

// ErrNotEntityID is returned by Parse for IDs that no Key produces.
var ErrNotEntityID = errors.New("not an artifactstate entity workflow ID")

// Parse is the inverse of Key.WorkflowID: Parse(k.WorkflowID()) == k for every
// valid k, and it rejects every string that is not such an ID.
func Parse(workflowID string) (Key, error) {
	rest, ok := strings.CutPrefix(workflowID, Prefix)
	if !ok {
		return Key{}, fmt.Errorf("%w: missing prefix %q", ErrNotEntityID, Prefix)
	}
	artifact, escaped, ok := strings.Cut(rest, "/")
	if !ok {
		return Key{}, fmt.Errorf("%w: missing '/' after the artifact ID", ErrNotEntityID)
	}
	user, err := unescape(escaped)
	if err != nil {
		return Key{}, fmt.Errorf("%w: user ID: %v", ErrNotEntityID, err)
	}
	id, err := strconv.ParseInt(artifact, 10, 64)
	if err != nil || strconv.FormatInt(id, 10) != artifact {
		return Key{}, fmt.Errorf("%w: artifact ID %q is not a canonical int64", ErrNotEntityID, artifact)
	}
	k, err := New(user, id)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrNotEntityID, err)
	}
	return k, nil
}
