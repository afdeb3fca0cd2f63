package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/worker"
	"github.com/artifactstate/artifactstate/workflows"
)

// Results of a run.
type Results struct {
	Options struct {
		Concurrency     int     `json:"concurrency"`
		Pairs           int     `json:"pairs"`
		DurationSeconds float64 `json:"durationSeconds"`
		ReadModel       bool    `json:"readModel"`
		Store           string  `json:"temporalStore"`
	} `json:"options"`
	Phases []Phase `json:"phases"`
	Ratios struct {
		// UpdateToSignal compares the two ways to write: update-with-start
		// (answered once the entity applied the command; the API's way)
		// against signal-with-start (answered once the server stored it).
		UpdateToSignal       float64 `json:"updateWithStartToSignalWithStart"`
		APIWriteToRawUpdate  float64 `json:"apiWriteToRawUpdateWithStart"`
		StrongReadToRawQuery float64 `json:"strongReadToRawQuery"`
		EventualToStrongRead float64 `json:"eventualToStrongRead,omitempty"`
		// APIMixToRawMix compares the API's 50/50 mix with the same mix of
		// raw SDK updates and queries.
		APIMixToRawMix float64 `json:"apiMixToRawMix"`
		// NewPairToFloor compares the raw update-with-start of a new entity
		// with a minimal workflow started and run to completion;
		// APINewPairToRaw the API's write to a new pair with the former.
		NewPairToFloor  float64 `json:"newEntityToMinimalWorkflow,omitempty"`
		APINewPairToRaw float64 `json:"apiNewPairToRawNewEntity,omitempty"`
	} `json:"ratios"`
	NewPairs *NewPairs      `json:"newPairs,omitempty"`
	HotPair  *HotPair       `json:"hotPair,omitempty"`
	Memory   *Memory        `json:"memory,omitempty"`
	Evicted  []EvictedQuery `json:"evictedQuery,omitempty"`
}

// NewPairs is the new-pairs phase: each client writes a new pair and reads
// it back at once (phases "new pair: write" and "new pair: read at once").
type NewPairs struct {
	Pairs        int         `json:"pairs"`
	Concurrency  int         `json:"concurrency"`
	WritesFailed int         `json:"writesFailed"`
	FailedReads  map[int]int `json:"failedReadsByStatus,omitempty"`
	WrongAnswers int         `json:"wrongAnswers"`
}

// HotPair is the hot-pair phase (phases "hot pair: read" and "hot pair:
// write"): its history's linearizability verdict.
type HotPair struct {
	Readers       int    `json:"readers"`
	Writers       int    `json:"writers"`
	Operations    int    `json:"operations"`
	UnknownWrites int    `json:"unknownWrites"`
	Verdict       string `json:"linearizability"`
}

// Memory held by the worker for cached idle entities: heap, and goroutine
// stacks (each cached workflow keeps a coroutine, a goroutine, parked).
type Memory struct {
	Entities            int     `json:"entities"`
	StackPerEntity      float64 `json:"stackBytesPerCachedEntity"`
	GoroutinesPerEntity float64 `json:"goroutinesPerCachedEntity"`
	HeapCachedMiB       float64 `json:"heapWithCacheMiB"`
	HeapPurgedMiB       float64 `json:"heapAfterPurgeMiB"`
	BytesPerEntity      float64 `json:"bytesPerCachedEntity"`
	CreateSeconds       float64 `json:"createSeconds"`
	CreatedPerSecond    float64 `json:"createdPerSecond"`
}

// EvictedQuery is the latency of a query to an entity of HistoryEvents
// events that is not in the worker's cache (so the worker replays it).
type EvictedQuery struct {
	HistoryEvents int     `json:"historyEvents"`
	EvictedMs     float64 `json:"evictedQueryMs"`
	CachedMs      float64 `json:"cachedQueryMs"`
}

// Run runs every phase.
func Run(ctx context.Context, o Options) (*Results, error) {
	e, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := e.stop(); err != nil {
			o.Logger.Warn("stop the bench environment", "error", err)
		}
	}()
	res := &Results{}
	res.Options.Concurrency, res.Options.Pairs, res.Options.DurationSeconds = o.Concurrency, o.Pairs, o.Duration.Seconds()
	res.Options.ReadModel = o.Cassandra.Enabled()
	res.Options.Store = "SQLite in memory"
	if o.DatabaseFile != "" {
		res.Options.Store = "SQLite file (WAL)"
	}
	// Memory first, on a fresh worker: the purge after it empties the cache
	// for the phases that follow.
	if o.IdleEntities > 0 {
		if err := e.memory(ctx, res); err != nil {
			return res, err
		}
	}
	if o.Creation {
		if err := e.creation(ctx, res); err != nil {
			return res, err
		}
	}
	if !o.SkipThroughput {
		if err := e.throughput(ctx, res); err != nil {
			return res, err
		}
	}
	if o.NewPairs > 0 {
		if err := e.newPairs(ctx, res); err != nil {
			return res, err
		}
	}
	if o.HotReaders+o.HotWriters > 0 {
		if err := e.hotPair(ctx, res); err != nil {
			return res, err
		}
	}
	if len(o.HistoryEvents) > 0 {
		if err := e.evicted(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (e *env) pair(i int) entityid.Key {
	return entityid.Key{UserID: userOf(i % 1000), ArtifactID: int64(i)}
}

// measure runs next for Warmup (discarded) and then Duration.
func (e *env) measure(ctx context.Context, name string, next func(worker int) loadtest.Op) Phase {
	o := e.opts
	if o.Warmup > 0 {
		loadtest.RunClosed(ctx, o.Concurrency, o.Warmup, next)
	}
	p := phaseOf(name, loadtest.RunClosed(ctx, o.Concurrency, o.Duration, next))
	o.logf("  %-26s %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  errors %d", name, p.Throughput, p.P50, p.P99, p.Errors)
	return p
}

// roundsPerComparison is how many times each side of a comparison runs.
const roundsPerComparison = 3

// rounds measures a and b alternately and returns each side's totals: the
// throughput is the mean of its rounds, the latencies the worst p99 and the
// mean p50.
func (e *env) rounds(ctx context.Context, aName string, a func(int) loadtest.Op, bName string, b func(int) loadtest.Op) (Phase, Phase) {
	var as, bs []Phase
	for r := range roundsPerComparison {
		if r%2 == 0 {
			as = append(as, e.measure(ctx, aName, a))
			bs = append(bs, e.measure(ctx, bName, b))
		} else {
			bs = append(bs, e.measure(ctx, bName, b))
			as = append(as, e.measure(ctx, aName, a))
		}
	}
	sum := func(name string, ps []Phase) Phase {
		out := Phase{Name: name}
		for _, p := range ps {
			out.Throughput += p.Throughput / float64(len(ps))
			out.P50 += p.P50 / float64(len(ps))
			out.P99 = max(out.P99, p.P99)
			out.Errors += p.Errors
			out.Count += p.Count
		}
		e.opts.logf("%-28s %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  errors %d (%d rounds)", name, out.Throughput, out.P50, out.P99, out.Errors, len(ps))
		return out
	}
	return sum(aName, as), sum(bName, bs)
}

// quiesce waits until every entity has processed its writes (a strong
// read of each returns only then), so read phases measure reads.
func (e *env) quiesce(ctx context.Context, ents *entities.Client) {
	if err := parallel(ctx, e.opts.Concurrency, e.opts.Pairs, func(ctx context.Context, i int) error {
		_, err := ents.State(ctx, e.pair(i))
		return err
	}); err != nil {
		e.opts.Logger.Warn("quiesce", "error", err)
	}
}

func (e *env) throughput(ctx context.Context, res *Results) error {
	o := e.opts
	ents := entities.New(e.client, entities.Options{Namespace: e.cfg.Temporal.Namespace, TaskQueue: e.cfg.Temporal.TaskQueue}, o.Logger)
	t0 := time.Now()
	if err := parallel(ctx, o.Concurrency, o.Pairs, func(ctx context.Context, i int) error {
		return retry(ctx, func() error {
			_, err := ents.Apply(ctx, e.pair(i), entities.Command{Kind: workflows.SetArtifactReadByUser})
			return err
		})
	}); err != nil {
		return err
	}
	o.logf("created %d entities in %.1fs (%.0f/s)", o.Pairs, time.Since(t0).Seconds(), float64(o.Pairs)/time.Since(t0).Seconds())
	api, err := loadtest.NewClient(e.apiURL, loadtest.ClientOptions{MaxConns: 4 * o.Concurrency, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer api.Close()
	// Both write phases flip the feed flag, so every write is a state change
	// (and, with a read model, a projection).
	var seq atomic.Uint64
	pick := func(worker int) (entityid.Key, workflows.CommandKind) {
		n := seq.Add(1)
		kind := workflows.SetArtifactAddedToUserFeed
		if n/uint64(o.Pairs)%2 == 1 {
			kind = workflows.SetArtifactRemovedFromUserFeed
		}
		return e.pair(int(n % uint64(o.Pairs))), kind
	}
	rawSignal := func(int) loadtest.Op {
		k, kind := pick(0)
		return loadtest.Op{Call: "signal", Do: func(ctx context.Context) loadtest.Result {
			_, err := e.client.SignalWithStartWorkflow(ctx, k.WorkflowID(), workflows.CommandSignalName, workflows.Command{Kind: kind},
				client.StartWorkflowOptions{ID: k.WorkflowID(), TaskQueue: e.cfg.Temporal.TaskQueue},
				workflows.EntityWorkflowName, workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID})
			return loadtest.Result{Err: err, Write: true, Acked: err == nil}
		}}
	}
	// updateOp and queryOp are the raw SDK calls: one update (as the API
	// writes) and one query of a pair.
	updateOp := func(k entityid.Key, kind workflows.CommandKind) loadtest.Op {
		return loadtest.Op{Call: "update", Do: func(ctx context.Context) loadtest.Result {
			_, err := ents.Apply(ctx, k, entities.Command{Kind: kind})
			return loadtest.Result{Err: err, Write: true, Acked: err == nil}
		}}
	}
	queryOp := func(k entityid.Key) loadtest.Op {
		return loadtest.Op{Call: "query", Do: func(ctx context.Context) loadtest.Result {
			v, err := e.client.QueryWorkflow(ctx, k.WorkflowID(), "", workflows.QueryGetAllStates)
			if err == nil {
				var s workflows.State
				err = v.Get(&s)
			}
			return loadtest.Result{Err: err}
		}}
	}
	rawUpdate := func(int) loadtest.Op { return updateOp(pick(0)) }
	apiWriteOp := func(w int) loadtest.Op {
		k, kind := pick(w)
		return api.WriteOp(kind, k, w)
	}
	rawQueryOp := func(int) loadtest.Op {
		k, _ := pick(0)
		return queryOp(k)
	}
	strongOp := func(int) loadtest.Op {
		k, _ := pick(0)
		return api.AllStatesOp(k, true)
	}
	// Alternating rounds, so that neither side of a comparison always runs
	// on a warmer (or more loaded) system than the other.
	raw, rawUWS := e.rounds(ctx, "raw SDK SignalWithStart", rawSignal, "raw SDK UpdateWithStart", rawUpdate)
	e.quiesce(ctx, ents)
	rawUWS2, apiWrite := e.rounds(ctx, "raw SDK UpdateWithStart (again)", rawUpdate, "API write (HTTP)", apiWriteOp)
	e.quiesce(ctx, ents)
	rawQuery, strong := e.rounds(ctx, "raw SDK QueryWorkflow", rawQueryOp, "API strong read (HTTP)", strongOp)
	// The closed model's mix: half writes of a random command (many change
	// nothing, as in the load generator's closed scenario), half strong
	// reads, on random pairs. The raw side is the ceiling of the design on
	// this machine: one update per write, one query per strong read, and
	// nothing else (no HTTP, no API).
	mixKind := workflows.CommandKinds
	rawMix := func(int) loadtest.Op {
		k := e.pair(rand.IntN(o.Pairs))
		if rand.IntN(2) == 0 {
			return updateOp(k, mixKind[rand.IntN(len(mixKind))])
		}
		return queryOp(k)
	}
	apiMix := func(w int) loadtest.Op {
		k := e.pair(rand.IntN(o.Pairs))
		if rand.IntN(2) == 0 {
			return api.WriteOp(mixKind[rand.IntN(len(mixKind))], k, w)
		}
		return api.AllStatesOp(k, true)
	}
	rawMixed, apiMixed := e.rounds(ctx, "raw SDK 50/50 update/query", rawMix, "API 50/50 write/strong (HTTP)", apiMix)
	res.Phases = append(res.Phases, raw, rawUWS, rawUWS2, apiWrite, rawQuery, strong, rawMixed, apiMixed)
	res.Ratios.APIMixToRawMix = apiMixed.Throughput / rawMixed.Throughput
	res.Ratios.UpdateToSignal = rawUWS.Throughput / raw.Throughput
	res.Ratios.APIWriteToRawUpdate = apiWrite.Throughput / rawUWS2.Throughput
	res.Ratios.StrongReadToRawQuery = strong.Throughput / rawQuery.Throughput
	if e.store != nil {
		eventual := e.measure(ctx, "API eventual read (HTTP)", func(int) loadtest.Op {
			k, _ := pick(0)
			return api.EventualOp(k)
		})
		res.Phases = append(res.Phases, eventual)
		res.Ratios.EventualToStrongRead = eventual.Throughput / strong.Throughput
	}
	o.logf("ratios: update-with-start / signal-with-start %.2f, API write / raw update-with-start %.2f, strong read / raw query %.2f, eventual / strong %.2f, API mix / raw mix %.2f",
		res.Ratios.UpdateToSignal, res.Ratios.APIWriteToRawUpdate, res.Ratios.StrongReadToRawQuery, res.Ratios.EventualToStrongRead, res.Ratios.APIMixToRawMix)
	return nil
}

// newPairs writes NewPairs new pairs and reads each back as soon as its
// write is acknowledged: a new entity's first workflow task must complete
// before a query to it runs.
func (e *env) newPairs(ctx context.Context, res *Results) error {
	o := e.opts
	api, err := loadtest.NewClient(e.apiURL, loadtest.ClientOptions{MaxConns: o.NewPairsConcurrency, Timeout: time.Minute})
	if err != nil {
		return err
	}
	defer api.Close()
	s := &loadtest.NewPairs{Client: api, Pairs: loadtest.NewPairIDs([]string{"bench-new"}, loadtest.RunTag(uint64(time.Now().UnixNano())), o.NewPairs)}
	rep := s.Run(ctx, &loadtest.Runner{}, o.NewPairsConcurrency)
	raw := rep.ReadAfterWrite
	res.NewPairs = &NewPairs{Pairs: raw.Pairs, Concurrency: o.NewPairsConcurrency, WritesFailed: raw.WritesFailed,
		FailedReads: raw.FailedReadsByStatus, WrongAnswers: raw.WrongAnswers}
	for _, c := range []struct{ name, call string }{{"new pair: write", loadtest.CallAddToFeed}, {"new pair: read at once", loadtest.CallIsInFeed}} {
		p := callPhase(c.name, rep.Call(c.call))
		res.Phases = append(res.Phases, p)
		o.logf("%-28s %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  errors %d", p.Name, p.Throughput, p.P50, p.P99, p.Errors)
	}
	o.logf("new pairs: %d, %d concurrent: %d writes failed, %d reads failed %v, %d wrong answers",
		raw.Pairs, o.NewPairsConcurrency, raw.WritesFailed, raw.FailedReads(), raw.FailedReadsByStatus, raw.WrongAnswers)
	return nil
}

// hotPair runs HotReaders readers and HotWriters writers on one new pair
// for Duration and checks the history for linearizability.
func (e *env) hotPair(ctx context.Context, res *Results) error {
	o := e.opts
	api, err := loadtest.NewClient(e.apiURL, loadtest.ClientOptions{MaxConns: o.HotReaders + o.HotWriters, Timeout: time.Minute})
	if err != nil {
		return err
	}
	defer api.Close()
	h := &loadtest.HotPair{Client: api, Pair: loadtest.NewPairIDs([]string{"bench-hot"}, loadtest.RunTag(uint64(time.Now().UnixNano())), 1)[0],
		Readers: o.HotReaders, Writers: o.HotWriters, Recorder: linearizability.NewRecorder()}
	h.Prepare()
	// One name per side, so that the report aggregates reads and writes.
	rep := loadtest.RunClosed(ctx, h.Workers(), o.Duration, func(w int) loadtest.Op {
		op := h.Next(w)
		op.Call = "hot pair: read"
		if w >= h.Readers {
			op.Call = "hot pair: write"
		}
		return op
	})
	for _, name := range []string{"hot pair: read", "hot pair: write"} {
		if st := rep.Call(name); st.Count > 0 {
			p := callPhase(name, st)
			res.Phases = append(res.Phases, p)
			o.logf("%-28s %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  errors %d", p.Name, p.Throughput, p.P50, p.P99, p.Errors)
		}
	}
	lin, err := linearizability.Check(h.Recorder.History(), linearizability.Options{Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	hp := &HotPair{Readers: o.HotReaders, Writers: o.HotWriters, Verdict: string(linearizability.Linearizable)}
	for _, p := range lin.Pairs {
		hp.Operations += p.Operations
		hp.UnknownWrites += p.UnknownWrites
		hp.Verdict = string(p.Verdict)
	}
	res.HotPair = hp
	o.logf("hot pair: %d readers, %d writers: %s", o.HotReaders, o.HotWriters, lin)
	return nil
}

// evicted measures queries to evicted entities by history length, on a
// queue whose worker never continues as new.
func (e *env) evicted(ctx context.Context, res *Results) error {
	o := e.opts
	const queue = "bench-long-history"
	w := sdkworker.New(e.client, queue, sdkworker.Options{})
	worker.RegisterWorkflows(w, workflows.Options{}) // no budget: histories grow
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	ents := entities.New(e.client, entities.Options{Namespace: e.cfg.Temporal.Namespace, TaskQueue: queue}, o.Logger)
	for _, target := range o.HistoryEvents {
		k := entityid.Key{UserID: "long-history", ArtifactID: int64(target)}
		events := int64(0)
		for n := 0; events < int64(target); n++ {
			kind := []workflows.CommandKind{workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}[n%2]
			if _, err := ents.Apply(ctx, k, entities.Command{Kind: kind}); err != nil {
				return err
			}
			if n%50 == 0 {
				if _, err := ents.State(ctx, k); err != nil { // let the tasks catch up
					return err
				}
				d, err := e.client.DescribeWorkflowExecution(ctx, k.WorkflowID(), "")
				if err != nil {
					return err
				}
				events = d.GetWorkflowExecutionInfo().GetHistoryLength()
			}
		}
		var evicted, cached []time.Duration
		for range 7 {
			// A write's workflow task puts the entity back in the cache (a
			// query alone replays it without caching it).
			if _, err := ents.Apply(ctx, k, entities.Command{Kind: workflows.SetArtifactReadByUser}); err != nil {
				return err
			}
			if _, err := ents.State(ctx, k); err != nil {
				return err
			}
			t1 := time.Now()
			if _, err := ents.State(ctx, k); err != nil {
				return err
			}
			cached = append(cached, time.Since(t1))
			sdkworker.PurgeStickyWorkflowCache()
			t0 := time.Now()
			if _, err := ents.State(ctx, k); err != nil {
				return err
			}
			evicted = append(evicted, time.Since(t0))
		}
		q := EvictedQuery{HistoryEvents: int(events), EvictedMs: medianMs(evicted), CachedMs: medianMs(cached)}
		res.Evicted = append(res.Evicted, q)
		o.logf("query, %5d-event history: evicted %7.1f ms, cached %5.1f ms", q.HistoryEvents, q.EvictedMs, q.CachedMs)
	}
	return nil
}

// memory caches IdleEntities new entities in the worker and compares the
// heap with the worker's cache full and purged.
func (e *env) memory(ctx context.Context, res *Results) error {
	o := e.opts
	ents := entities.New(e.client, entities.Options{Namespace: e.cfg.Temporal.Namespace, TaskQueue: e.cfg.Temporal.TaskQueue}, o.Logger)
	key := func(i int) entityid.Key {
		return entityid.Key{UserID: "idle-" + fmt.Sprint(i%1000), ArtifactID: int64(i)}
	}
	o.logf("creating %d idle entities...", o.IdleEntities)
	t0 := time.Now()
	base := heapMiB()
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() { // progress: the creation rate falls as SQLite fills up
		last, lastAt := int64(0), time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Second):
				n := done.Load()
				o.logf("  %d created, %.0f/s over the last 30 s", n, float64(n-last)/time.Since(lastAt).Seconds())
				last, lastAt = n, time.Now()
			}
		}
	}()
	if err := parallel(ctx, o.Concurrency, o.IdleEntities, func(ctx context.Context, i int) error {
		defer done.Add(1)
		return retry(ctx, func() error {
			_, err := ents.Apply(ctx, key(i), entities.Command{Kind: workflows.SetArtifactReadByUser})
			return err
		})
	}); err != nil {
		return err
	}
	// Every entity's first task done: the worker may trail the creations by
	// minutes, and a query to the last ones waits for their tasks.
	settle, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	for i := max(0, o.IdleEntities-50); i < o.IdleEntities; i++ {
		for {
			_, err := ents.State(settle, key(i))
			if err == nil {
				break
			}
			if settle.Err() != nil || !(errors.Is(err, entities.ErrTimeout) || errors.Is(err, entities.ErrUnavailable)) {
				return fmt.Errorf("wait for the idle entities' first tasks: %w", err)
			}
		}
	}
	o.logf("  all %d entities processed after %.0fs", o.IdleEntities, time.Since(t0).Seconds())
	created := time.Since(t0)
	cached := heapMiB()
	goroutinesCached, stackCached := runtime.NumGoroutine(), stackBytes()
	sdkworker.PurgeStickyWorkflowCache()
	purged := heapMiB()
	goroutinesPurged, stackPurged := runtime.NumGoroutine(), stackBytes()
	mem := &Memory{Entities: o.IdleEntities, HeapCachedMiB: cached, HeapPurgedMiB: purged,
		BytesPerEntity: (cached - purged) * (1 << 20) / float64(o.IdleEntities), CreateSeconds: created.Seconds(),
		CreatedPerSecond:    float64(o.IdleEntities) / created.Seconds(),
		StackPerEntity:      (stackCached - stackPurged) / float64(o.IdleEntities),
		GoroutinesPerEntity: float64(goroutinesCached-goroutinesPurged) / float64(o.IdleEntities)}
	res.Memory = mem
	o.logf("worker cache: %d entities; process heap %.0f MiB before, %.0f MiB with them cached, %.0f MiB after purging the cache: %.0f heap + %.0f stack bytes (%.1f goroutines) per cached entity (created at %.0f/s)",
		mem.Entities, base, mem.HeapCachedMiB, mem.HeapPurgedMiB, mem.BytesPerEntity, mem.StackPerEntity, mem.GoroutinesPerEntity, mem.CreatedPerSecond)
	return nil
}

func heapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func stackBytes() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.StackInuse)
}

func medianMs(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// retry retries f while it fails with a retriable Temporal error (a busy
// server answers 503/504-like errors under a creation burst).
func retry(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || attempt == 10 || !(errors.Is(err, entities.ErrTimeout) || errors.Is(err, entities.ErrUnavailable)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// parallel runs f(0..n-1) on workers goroutines, stopping at the first error.
func parallel(ctx context.Context, workers, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
