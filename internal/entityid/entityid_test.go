package entityid

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestWorkflowIDRoundTrips(t *testing.T) {
	t.Parallel()
	cases := []Key{
		{UserID: "Mike", ArtifactID: 1},
		{UserID: "1Mike", ArtifactID: 1},
		{UserID: "Mike", ArtifactID: 11},
		{UserID: `quote " and back\slash`, ArtifactID: 0},
		{UserID: "a/b/../c", ArtifactID: -5},
		{UserID: "/", ArtifactID: math.MaxInt64},
		{UserID: "Łukasz Żółć", ArtifactID: math.MinInt64},
		{UserID: "山田太郎", ArtifactID: 42},
		{UserID: "👩‍💻 dev", ArtifactID: 7},
		{UserID: " spaced ", ArtifactID: 3},
		{UserID: strings.Repeat("é", MaxUserIDBytes/2), ArtifactID: 9},
	}
	seen := map[string]Key{}
	for _, k := range cases {
		if _, err := New(k.UserID, k.ArtifactID); err != nil {
			t.Fatalf("New(%q, %d): %v", k.UserID, k.ArtifactID, err)
		}
		id := k.WorkflowID()
		got, err := Parse(id)
		if err != nil {
			t.Fatalf("Parse(%q): %v", id, err)
		}
		if got != k {
			t.Fatalf("Parse(%q) = %+v, want %+v", id, got, k)
		}
		if prev, dup := seen[id]; dup {
			t.Fatalf("%+v and %+v share workflow ID %q", prev, k, id)
		}
		seen[id] = k
	}
}

func TestWorkflowIDIsReadableASCII(t *testing.T) {
	t.Parallel()
	for userID, want := range map[string]string{
		"Mike":           "artifactstate/1/Mike",
		"Mike Smith":     "artifactstate/1/Mike%20Smith",
		"100%":           "artifactstate/1/100%25",
		"a/b":            "artifactstate/1/a/b",
		`q"uote`:         `artifactstate/1/q"uote`,
		"山":              "artifactstate/1/%E5%B1%B1",
		"Żółć":           "artifactstate/1/%C5%BB%C3%B3%C5%82%C4%87",
		"~!@#$^&*()_+{}": "artifactstate/1/~!@#$^&*()_+{}",
	} {
		if got := (Key{UserID: userID, ArtifactID: 1}).WorkflowID(); got != want {
			t.Errorf("WorkflowID of %q = %q, want %q", userID, got, want)
		}
	}
	long := Key{UserID: strings.Repeat("山", MaxUserIDBytes/3), ArtifactID: math.MinInt64}
	if n := len(long.WorkflowID()); n > 1000 {
		t.Errorf("longest workflow ID is %d bytes, over Temporal's 1000", n)
	}
}

func TestOriginalCollisionIsGone(t *testing.T) {
	t.Parallel()
	a := Key{UserID: "1Mike", ArtifactID: 1}.WorkflowID()
	b := Key{UserID: "Mike", ArtifactID: 11}.WorkflowID()
	if a == b {
		t.Fatalf("(1, 1Mike) and (11, Mike) collide on %q", a)
	}
}

func TestValidateUserIDRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"empty":          "",
		"too long":       strings.Repeat("a", MaxUserIDBytes+1),
		"too long UTF-8": strings.Repeat("山", MaxUserIDBytes/3+1),
		"invalid UTF-8":  "Mi\xffke",
		"NUL":            "Mi\x00ke",
		"newline":        "Mike\n",
		"tab":            "Mi\tke",
		"DEL":            "Mike\x7f",
		"C1 control":     "Mike\u0085",
		"line separator": "Mike\u2028",
		"private use":    "Mike\ue000",
	}
	for name, userID := range cases {
		err := ValidateUserID(userID)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "userId" {
			t.Errorf("%s: ValidateUserID(%q) = %v, want a userId FieldError", name, userID, err)
		}
	}
}

func TestParseRejectsForeignIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"", "11Mike", "artifactstate/", "artifactstate/1", "artifactstate/01/Mike",
		"artifactstate/+1/Mike", "artifactstate/-0/Mike", "artifactstate/x/Mike",
		"artifactstate/1/", "artifactstate/99999999999999999999/Mike", "other/1/Mike",
		"artifactstate/1/Mi\nke", "artifactstate/1/Mi ke", "artifactstate/1/%e5%b1%b1",
		"artifactstate/1/%41", "artifactstate/1/Mike%2", "artifactstate/1/Mike%", "artifactstate/1/%ZZ",
		"artifactstate/1/山", "artifactstate/1/%0A",
	} {
		if k, err := Parse(id); !errors.Is(err, ErrNotEntityID) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrNotEntityID", id, k, err)
		}
	}
}

// FuzzWorkflowID checks injectivity from both sides: every valid key
// round-trips, and every string Parse accepts is produced by exactly that key.
func FuzzWorkflowID(f *testing.F) {
	f.Add("Mike", int64(1), "1Mike", int64(1))
	f.Add("1Mike", int64(1), "Mike", int64(11))
	f.Add("a/b", int64(-1), "b", int64(0))
	f.Add("山田", int64(500), "山", int64(500))
	f.Fuzz(func(t *testing.T, u1 string, a1 int64, u2 string, a2 int64) {
		k1, err1 := New(u1, a1)
		k2, err2 := New(u2, a2)
		if err1 == nil {
			got, err := Parse(k1.WorkflowID())
			if err != nil || got != k1 {
				t.Fatalf("round trip of %+v gave %+v, %v", k1, got, err)
			}
		}
		if err1 == nil && err2 == nil && k1 != k2 && k1.WorkflowID() == k2.WorkflowID() {
			t.Fatalf("%+v and %+v collide", k1, k2)
		}
		// Any accepted string is canonical: re-encoding gives it back.
		raw := u1
		if k, err := Parse(raw); err == nil && k.WorkflowID() != raw {
			t.Fatalf("Parse(%q) accepted a non-canonical ID (re-encodes to %q)", raw, k.WorkflowID())
		}
		if err1 == nil {
			for _, c := range []byte(k1.WorkflowID()) {
				if c < '!' || c > '~' {
					t.Fatalf("workflow ID of %+v has byte %#x outside printable ASCII", k1, c)
				}
			}
		}
	})
}
