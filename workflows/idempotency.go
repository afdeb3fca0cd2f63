package workflows

import (
	"slices"
	"time"
)

// How long, and how many, idempotency keys an entity remembers. Temporal
// itself de-duplicates update IDs only within one run; these records carry
// the guarantee across continue-as-new. A retry later than this, or after
// this many newer keyed commands on the same pair, applies again.
const (
	IdempotencyWindow     = 24 * time.Hour
	IdempotencyMaxRecords = 64
)

// IdempotencyRecord is the result a keyed command answered.
type IdempotencyRecord struct {
	Key    string        `json:"key"`
	Kind   CommandKind   `json:"kind"`
	Result CommandResult `json:"result"`
	At     time.Time     `json:"at"`
}

// IdempotencyRecords are an entity's records, oldest first. The workflow
// and the fold of a closed entity's history (internal/entities) both keep
// them with these methods.
type IdempotencyRecords []IdempotencyRecord

// Lookup returns the record of key if it is still within the window at now.
func (rs IdempotencyRecords) Lookup(key string, now time.Time) (IdempotencyRecord, bool) {
	if key == "" {
		return IdempotencyRecord{}, false
	}
	i := slices.IndexFunc(rs, func(r IdempotencyRecord) bool { return r.Key == key })
	if i < 0 || now.Sub(rs[i].At) >= IdempotencyWindow {
		return IdempotencyRecord{}, false
	}
	return rs[i], true
}

// Remember records r (if it has a key), dropping records older than the
// window and the oldest beyond the maximum.
func (rs *IdempotencyRecords) Remember(r IdempotencyRecord) {
	if r.Key == "" {
		return
	}
	cutoff := r.At.Add(-IdempotencyWindow)
	*rs = slices.DeleteFunc(*rs, func(old IdempotencyRecord) bool { return old.Key == r.Key || old.At.Before(cutoff) })
	*rs = append(*rs, r)
	if extra := len(*rs) - IdempotencyMaxRecords; extra > 0 {
		*rs = slices.Delete(*rs, 0, extra)
	}
}

// applyRequest applies req to s as the command update does, in the workflow
// and in the fold of a closed run's history (Fold) alike: a request whose
// idempotency key the entity remembers answers the recorded result and
// applies nothing (repeated); any other is applied with apply, which
// reports whether a flag changed, and remembered under its key.
func applyRequest(s *State, keys *IdempotencyRecords, req CommandRequest, now time.Time,
	apply func(CommandKind) bool) (res CommandResult, repeated, changed bool) {
	if rec, ok := keys.Lookup(req.IdempotencyKey, now); ok {
		return rec.Result, true, false
	}
	changed = apply(req.Kind)
	res = CommandResult{State: *s}
	keys.Remember(IdempotencyRecord{Key: req.IdempotencyKey, Kind: req.Kind, Result: res, At: now})
	return res, false, changed
}
