// Package robustness drives many clients with a seeded random mix of every
// store operation while a fault is injected, records each call with its
// start and end time, and checks the whole history for linearizability
// against a sequential model of the store with porcupine.
package robustness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

var (
	seedFlag = flag.Uint64("robustness.seed", 0, "replay a run with this seed (0: a new one)")
	outDir   = flag.String("robustness.out", "", "where a failed check writes its visualization (default: the system temp dir)")
)

const (
	clients       = 8
	opsPerClient  = 400 // 3200 operations a run
	checkDeadline = 2 * time.Minute
)

// fault is injected while the clients run; it returns when ctx ends or the
// fault is done, and reports how many times it struck.
type fault struct {
	name string
	// deadline, when set, gives every call a short random deadline instead
	// of using the server against the store.
	deadline func(r *rand.Rand) time.Duration
	inject   func(ctx context.Context, t *testing.T, c *pgcluster.Cluster, admin *pgx.Conn) int
	// finishes marks a fault that ends by itself: the clients go on past
	// their operations until it has, so that all of it hits the run.
	finishes bool
	// failover runs the store on a primary with a synchronous standby,
	// through a DSN naming both (target_session_attrs=read-write); the
	// fault kills the primary and promotes the standby.
	failover bool
}

var faults = []fault{
	{name: "None", inject: func(context.Context, *testing.T, *pgcluster.Cluster, *pgx.Conn) int { return 0 }},
	{name: "KillBackends200ms", inject: killEvery(200 * time.Millisecond)},
	{name: "RestartTwice", inject: restartTwice, finishes: true},
	{name: "FailoverSync", failover: true, finishes: true},
	{name: "ShortDeadlines", deadline: func(r *rand.Rand) time.Duration {
		return time.Duration(1+r.IntN(15)) * time.Millisecond
	}, inject: func(context.Context, *testing.T, *pgcluster.Cluster, *pgx.Conn) int { return 0 }},
}

func TestRobustness(t *testing.T) {
	if testing.Short() {
		t.Skip("the robustness suite runs four throwaway clusters; skipped under -short")
	}
	t.Parallel()
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			seed := *seedFlag
			if seed == 0 {
				seed = rand.Uint64()
			}
			t.Logf("seed %d (replay with -robustness.seed=%d -run 'TestRobustness/%s$')", seed, seed, f.name)
			runWithFault(t, f, seed)
		})
	}
}

func runWithFault(t *testing.T, f fault, seed uint64) {
	c := pgcluster.New(t, pgcluster.Options{})
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { admin.Close(context.Background()) }()
	if _, err := admin.Exec(ctx, "CREATE DATABASE robustness"); err != nil {
		t.Fatal(err)
	}
	cfg := state.DefaultConfig(c.URL("postgres", "robustness") + "?sslmode=disable")
	if f.failover {
		standby := withSyncStandby(t, c, admin)
		cfg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/robustness?sslmode=disable&target_session_attrs=read-write", c.Port, standby.Port)
		f.inject = failOver(standby)
	}
	cfg.QueryTimeout = 10 * time.Second
	cfg.ConnectTimeout = 5 * time.Second
	store, err := state.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	from, err := store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	feed := watchFeed(store, from+1, rec)
	runCtx, stopFault := context.WithCancel(ctx)
	var strikes int
	var faultDone sync.WaitGroup
	injected := make(chan struct{})
	faultDone.Go(func() {
		defer close(injected)
		admin, err := pgx.Connect(ctx, c.SocketDSN("postgres"))
		if err != nil {
			t.Errorf("fault connection: %v", err)
			return
		}
		defer func() { admin.Close(context.Background()) }()
		strikes = f.inject(runCtx, t, c, admin)
	})
	var wg sync.WaitGroup
	for id := range clients {
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		wg.Go(func() { runClient(ctx, store, rec, f, id, r, injected) })
	}
	wg.Wait()
	stopFault()
	faultDone.Wait()

	history := rec.history()
	// The store still works after the fault, without reopening, and the
	// change feed holds every write of the history exactly once.
	if err := store.Put(ctx, []byte("after"), []byte("fault")); err != nil {
		t.Fatalf("Put after the fault: %v", err)
	}
	caughtUp := feed.until(time.Minute, func(e state.Event) bool { return string(e.Key) == "after" })
	events, seenAt, err := feed.stop()
	if !caughtUp {
		t.Fatalf("the watch did not deliver the last write within a minute (%d events, error %v)", len(events), err)
	}
	problems := checkFeed(history, events, "fault")
	t.Logf("change feed: %d events, %d problems", len(events), len(problems))
	for _, p := range problems[:min(len(problems), 20)] {
		t.Error(p)
	}

	history, resolved := resolveUnknown(history, events, seenAt)
	start := time.Now()
	result, info := porcupine.CheckOperationsVerbose(storeModel, history, checkDeadline)
	took := time.Since(start)
	t.Logf("%d operations (%d outcomes unknown, %d of them settled by the change feed; %d failed reads and %d failed, unapplied writes left out), %d faults injected, checked in %v: %s",
		len(history), rec.unknown.Load(), resolved, rec.failedReads.Load(), rec.failedWrites.Load(), strikes, took.Round(time.Millisecond), result)
	if result != porcupine.Ok {
		dumpFailure(t, history, info)
		dir := *outDir
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("pgstate-robustness-%s-%d.html", f.name, seed))
		if err := porcupine.VisualizePath(storeModel, info, path); err != nil {
			t.Errorf("write visualization: %v", err)
		}
		t.Fatalf("history is not linearizable (%s); visualization: %s; replay with -robustness.seed=%d", result, path, seed)
	}
}

// recorder collects the history. Times are nanoseconds since it started,
// from the monotonic clock.
type recorder struct {
	start        time.Time
	mu           sync.Mutex
	ops          []porcupine.Operation
	unknown      atomic.Int64
	failedReads  atomic.Int64
	failedWrites atomic.Int64
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(client int, in input, call, ret int64, out output, err error) {
	if err != nil {
		if in.kind.isRead() {
			r.failedReads.Add(1)
			return
		}
		if !errors.Is(err, state.ErrOutcomeUnknown) {
			// The library promises that a write failing with any other
			// error was not applied: it is left out like a failed read,
			// and a read that saw it would make the history illegal.
			r.failedWrites.Add(1)
			return
		}
		// A write of unknown outcome may have taken effect at any time
		// after it was called, or never: it returns at the end of time.
		r.unknown.Add(1)
		out = output{unknown: true}
		ret = math.MaxInt64
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

func (r *recorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ops
}

func runClient(ctx context.Context, s *state.Postgres, rec *recorder, f fault, id int, r *rand.Rand, injected <-chan struct{}) {
	for n := 0; ; n++ {
		if n >= opsPerClient {
			if !f.finishes {
				return
			}
			select {
			case <-injected:
				return
			default:
			}
		}
		in := randomInput(r, fmt.Sprintf("c%d-%d", id, n))
		callCtx, cancel := ctx, context.CancelFunc(func() {})
		if f.deadline != nil {
			callCtx, cancel = context.WithTimeout(ctx, f.deadline(r))
		}
		call := rec.now()
		out, err := do(callCtx, s, in)
		cancel()
		if err != nil && !expectedFailure(err) {
			panic(fmt.Sprintf("client %d: %v: unexpected error: %v", id, in.kind, err))
		}
		ret := rec.now()
		for _, sub := range split(in, out, err) {
			rec.add(id, sub.in, call, ret, sub.out, sub.err)
		}
	}
}

type subOp struct {
	in  input
	out output
	err error
}

// split records what each operation guarantees. DeleteMany and
// DeletePrefix are atomic but, as READ COMMITTED statements, remove key by
// key: each key's removal is one delete taking effect within the call. A
// Transact is a read of its first key at the transaction's snapshot and a
// put of the second, both within the call; when it failed with
// ErrOutcomeUnknown the put may have happened, otherwise it certainly did
// not (the read is then left out, as every failed read is).
func split(in input, out output, err error) []subOp {
	one := func(kind opKind, k int, values ...string) input {
		return input{kind: kind, group: in.group, keys: []int{k}, values: values}
	}
	switch in.kind {
	case opDeleteMany, opDeletePrefix:
		keys := in.keys
		if in.kind == opDeletePrefix {
			keys = []int{0, 1, 2}
		}
		var subs []subOp
		for _, k := range keys {
			subs = append(subs, subOp{in: one(opDelete, k), err: err})
		}
		return subs
	case opTransact:
		read := subOp{in: one(opGet, in.keys[0]), out: output{found: out.found, value: out.value}}
		write := subOp{in: one(opPut, in.keys[1], out.written)}
		switch {
		case err == nil:
			return []subOp{read, write}
		case errors.Is(err, state.ErrOutcomeUnknown):
			write.err = err
			return []subOp{write}
		}
		return nil
	}
	return []subOp{{in: in, out: out, err: err}}
}

// expectedFailure lists what a fault may cause: an unreachable or
// restarting server, a deadline, an unknown outcome.
func expectedFailure(err error) bool {
	return errors.Is(err, state.ErrUnavailable) || errors.Is(err, state.ErrOutcomeUnknown) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func randomInput(r *rand.Rand, tag string) input {
	in := input{kind: opKind(r.IntN(int(opKinds))), group: r.IntN(groups)}
	distinct := r.Perm(keysPerGroup)
	switch in.kind {
	case opGetMany, opDeleteMany, opBatchPut:
		n := 1 + r.IntN(keysPerGroup)
		in.keys = distinct[:n]
		for j := range n {
			in.values = append(in.values, fmt.Sprintf("%s.%d", tag, j))
		}
	case opTransact:
		in.keys = distinct[:2]
		in.values = []string{tag}
	case opDeletePrefix:
	default:
		in.keys = distinct[:1]
		in.values = []string{tag}
	}
	switch in.kind {
	case opPutIfVersion, opDeleteIfVersion:
		in.version = int64(r.IntN(4)) // small, so that conditions often hold
		if in.kind == opDeleteIfVersion && in.version == 0 {
			in.version = 1
		}
	}
	return in
}

func do(ctx context.Context, s *state.Postgres, in input) (output, error) {
	key := func(j int) []byte { return keyName(in.group, in.keys[j]) }
	var o output
	var err error
	switch in.kind {
	case opGet:
		var v []byte
		v, o.found, err = s.Get(ctx, key(0))
		o.value = string(v)
	case opGetEntry:
		var e state.Entry
		e, o.found, err = s.GetEntry(ctx, key(0))
		o.value, o.version = string(e.Value), e.Version
	case opPut:
		err = s.Put(ctx, key(0), []byte(in.values[0]))
	case opPutTTL:
		err = s.PutWithTTL(ctx, key(0), []byte(in.values[0]), time.Hour)
	case opDelete:
		err = s.Delete(ctx, key(0))
	case opPutIfVersion, opPutIfAbsent:
		opt := state.IfVersion(in.version)
		if in.kind == opPutIfAbsent {
			opt = state.IfAbsent()
		}
		var res state.WriteResult
		res, err = s.PutEntry(ctx, key(0), []byte(in.values[0]), opt)
		o, err = conditional(res.Version, err)
	case opDeleteIfVersion:
		_, err = s.DeleteEntry(ctx, key(0), state.IfVersion(in.version))
		o, err = conditional(0, err)
	case opGetMany:
		keys := make([][]byte, len(in.keys))
		for j := range in.keys {
			keys[j] = key(j)
		}
		var m map[string][]byte
		m, err = s.GetMany(ctx, keys)
		o.values = map[int]string{}
		for j, k := range in.keys {
			if v, ok := m[string(keys[j])]; ok {
				o.values[k] = string(v)
			}
		}
	case opDeleteMany:
		keys := make([][]byte, len(in.keys))
		for j := range in.keys {
			keys[j] = key(j)
		}
		o.count, err = s.DeleteMany(ctx, keys)
	case opBatchPut:
		entries := make([]state.Entry, len(in.keys))
		for j := range in.keys {
			entries[j] = state.Entry{Key: key(j), Value: []byte(in.values[j])}
		}
		err = s.BatchPut(ctx, entries)
	case opDeletePrefix:
		o.count, err = s.DeletePrefix(ctx, groupPrefix(in.group))
	case opTransact:
		err = s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
			v, found, err := tx.Get(ctx, key(0))
			if err != nil {
				return err
			}
			o.found, o.value = found, string(v)
			o.written = transactValue(in.values[0], slot{present: found, value: string(v)})
			return tx.Put(ctx, key(1), []byte(o.written))
		})
	}
	return o, err
}

// conditional turns a conditional write's result into an output: a version
// mismatch is a successful call with ok false.
func conditional(version int64, err error) (output, error) {
	var vm *state.VersionMismatchError
	if errors.As(err, &vm) {
		return output{current: vm.Current}, nil
	}
	if err != nil {
		return output{}, err
	}
	return output{ok: true, version: version}, nil
}
