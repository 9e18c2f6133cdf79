package statetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// watchTests check the change feed of stores that implement state.Watcher;
// the others skip them.
var watchTests = []storeTest{
	{"WatchEventsOfEveryWrite", testWatchEventsOfEveryWrite},
	{"WatchPrefix", testWatchPrefix},
	{"WatchValues", testWatchValues},
	{"WatchResume", testWatchResume},
	{"WatchCompacted", testWatchCompacted},
	{"WatchExpire", testWatchExpire},
	{"WatchConcurrentWriters", testWatchConcurrentWriters},
	{"WatchTransactions", testWatchTransactions},
	{"WatchRestoreCheckpoint", testWatchRestoreCheckpoint},
	{"WatchInvalidOptions", testWatchInvalidOptions},
	{"WatchFromAhead", testWatchFromAhead},
	{"WatchEventExpiry", testWatchEventExpiry},
}

// watchDeadline bounds every wait for events: generous, for a loaded
// machine.
const watchDeadline = 30 * time.Second

func watcher(t *testing.T, s state.Store) state.Watcher {
	t.Helper()
	w, ok := s.(state.Watcher)
	if !ok {
		t.Skipf("%T has no change feed", s)
	}
	return w
}

func mustRevision(t *testing.T, w state.Watcher) int64 {
	t.Helper()
	rev, err := w.Revision(ctx())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

// collect watches prefix and returns the first n events, failing the test
// if they do not arrive within watchDeadline.
func collect(t *testing.T, w state.Watcher, prefix string, n int, opts ...state.WatchOption) []state.Event {
	t.Helper()
	c, cancel := context.WithTimeout(ctx(), watchDeadline)
	defer cancel()
	var got []state.Event
	if n == 0 {
		return got
	}
	for ev, err := range w.Watch(c, []byte(prefix), opts...) {
		if err != nil {
			t.Fatalf("Watch after %d events: %v", len(got), err)
		}
		got = append(got, ev)
		if len(got) == n {
			return got
		}
	}
	t.Fatalf("Watch(%q) ended after %d of %d events: %s", prefix, len(got), n, describeEvents(got))
	return nil
}

// change is an event without its revision and time, for comparisons.
type change struct {
	kind    state.EventKind
	key     string
	version int64
}

func (c change) String() string { return fmt.Sprintf("%v %s v%d", c.kind, c.key, c.version) }

func changes(evs []state.Event) []change {
	out := make([]change, len(evs))
	for i, ev := range evs {
		out[i] = change{ev.Kind, string(ev.Key), ev.Version}
	}
	return out
}

func describeEvents(evs []state.Event) string {
	return fmt.Sprint(changes(evs))
}

// checkRevisions fails unless revisions strictly increase.
func checkRevisions(t *testing.T, evs []state.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Revision <= evs[i-1].Revision {
			t.Fatalf("revisions do not increase at %d: %d then %d", i, evs[i-1].Revision, evs[i].Revision)
		}
	}
}

func sortedChanges(evs []state.Event) []change {
	out := changes(evs)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func testWatchEventsOfEveryWrite(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	// One write per step, so their order is fixed; the batch steps are
	// compared as sets, since one statement's keys have no order.
	mustPut(t, s, "a", "1")
	mustPut(t, s, "a", "2")
	if err := s.PutWithMetadata(ctx(), []byte("b"), []byte("1"), map[string]any{"x": 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(), []byte("never-written")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "3")
	if err := s.BatchPut(ctx(), []state.Entry{{Key: []byte("c"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMany(ctx(), [][]byte{[]byte("c"), []byte("missing")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx()); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, w, "", 10, state.FromRevision(from))
	checkRevisions(t, evs)
	want := []change{
		{state.EventPut, "a", 1},
		{state.EventPut, "a", 2},
		{state.EventPut, "b", 1},
		{state.EventDelete, "a", 2},
		{state.EventPut, "a", 1},
	}
	if got := changes(evs[:5]); !slices.Equal(got, want) {
		t.Fatalf("single writes: got %v, want %v", got, want)
	}
	if got, want := sortedChanges(evs[5:7]), []change{{state.EventPut, "b", 2}, {state.EventPut, "c", 1}}; !slices.Equal(got, want) {
		t.Fatalf("BatchPut: got %v, want %v", got, want)
	}
	if got, want := changes(evs[7:8]), []change{{state.EventDelete, "c", 1}}; !slices.Equal(got, want) {
		t.Fatalf("DeleteMany: got %v, want %v", got, want)
	}
	if got, want := sortedChanges(evs[8:10]), []change{{state.EventDelete, "a", 1}, {state.EventDelete, "b", 2}}; !slices.Equal(got, want) {
		t.Fatalf("Clear: got %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Value != nil || ev.Time.IsZero() {
			t.Fatalf("event %v: value %q without WithValues, time %v", ev, ev.Value, ev.Time)
		}
	}
	if rev := mustRevision(t, w); rev < evs[9].Revision {
		t.Fatalf("Revision() = %d, before the last event's %d", rev, evs[9].Revision)
	}
}

func testWatchPrefix(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	for i := range 3 {
		mustPut(t, s, fmt.Sprintf("other/%d", i), "x")
		mustPut(t, s, fmt.Sprintf("mine/%d", i), "x")
	}
	mustPut(t, s, "mine", "not under mine/")
	mustPut(t, s, "mine/end", "x")
	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{"Prefix", "mine/", []string{"mine/0", "mine/1", "mine/2", "mine/end"}},
		{"Everything", "", []string{"other/0", "mine/0", "other/1", "mine/1", "other/2", "mine/2", "mine", "mine/end"}},
		{"ExactKey", "mine/end", []string{"mine/end"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := collect(t, w, tc.prefix, len(tc.want), state.FromRevision(from))
			var keys []string
			for _, ev := range evs {
				keys = append(keys, string(ev.Key))
			}
			if !slices.Equal(keys, tc.want) {
				t.Fatalf("keys %q, want %q", keys, tc.want)
			}
		})
	}
}

func testWatchValues(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	mustPut(t, s, "k", "first")
	mustPut(t, s, "k", "")
	if err := s.Delete(ctx(), []byte("k")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []state.WatchOption
		want []string
		nils []bool
	}{
		{"WithValues", []state.WatchOption{state.WithValues()}, []string{"first", "", ""}, []bool{false, false, true}},
		{"Without", nil, []string{"", "", ""}, []bool{true, true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := collect(t, w, "k", 3, append(tc.opts, state.FromRevision(from))...)
			for i, ev := range evs {
				if string(ev.Value) != tc.want[i] || (ev.Value == nil) != tc.nils[i] {
					t.Fatalf("event %d (%v): value %q (nil %v), want %q (nil %v)", i, ev.Kind, ev.Value, ev.Value == nil, tc.want[i], tc.nils[i])
				}
			}
		})
	}
}

func testWatchResume(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	for i := range 10 {
		mustPut(t, s, fmt.Sprintf("r/%d", i), "x")
	}
	first := collect(t, w, "r/", 4, state.FromRevision(from))
	rest := collect(t, w, "r/", 6, state.FromRevision(first[3].Revision+1))
	all := append(first, rest...)
	checkRevisions(t, all)
	for i, ev := range all {
		if want := fmt.Sprintf("r/%d", i); string(ev.Key) != want {
			t.Fatalf("event %d is %q, want %q", i, ev.Key, want)
		}
	}
	// A watch without a start revision begins after the current one: the
	// first event it delivers is the next write.
	c, cancel := context.WithTimeout(ctx(), watchDeadline)
	defer cancel()
	started := make(chan struct{})
	var once sync.Once
	go func() {
		// Writes until the watch has seen one of them: the watch may
		// start before or after any single write.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-started:
				return
			case <-c.Done():
				return
			case <-tick.C:
			}
			if err := s.Put(c, []byte("r/live"), []byte(fmt.Sprint(i))); err != nil && c.Err() == nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	}()
	for ev, err := range w.Watch(c, []byte("r/")) {
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		once.Do(func() { close(started) })
		if string(ev.Key) != "r/live" || ev.Revision <= all[len(all)-1].Revision {
			t.Fatalf("watch from now delivered %v at revision %d", changes([]state.Event{ev}), ev.Revision)
		}
		break
	}
}

func testWatchCompacted(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("c/%d", i), "x")
	}
	evs := collect(t, w, "c/", 5, state.FromRevision(from))
	cut := evs[2].Revision
	n, err := w.CompactChanges(ctx(), cut)
	if err != nil {
		t.Fatalf("CompactChanges: %v", err)
	}
	if n < 3 {
		t.Fatalf("CompactChanges deleted %d changes, want at least 3", n)
	}
	// Compacting again, or below the marker, deletes nothing.
	if n, err := w.CompactChanges(ctx(), cut-1); err != nil || n != 0 {
		t.Fatalf("CompactChanges below the marker = %d, %v; want 0, nil", n, err)
	}
	tests := []struct {
		name      string
		from      int64
		compacted bool
	}{
		{"BeforeMarker", from, true},
		{"AtMarker", cut, true},
		{"AfterMarker", cut + 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(ctx(), watchDeadline)
			defer cancel()
			for ev, err := range w.Watch(c, []byte("c/"), state.FromRevision(tc.from)) {
				if !tc.compacted {
					if err != nil || ev.Revision != evs[3].Revision {
						t.Fatalf("got %v at %d, %v; want the event at %d", changes([]state.Event{ev}), ev.Revision, err, evs[3].Revision)
					}
					return
				}
				var ce *state.CompactedError
				if !errors.Is(err, state.ErrCompacted) || !errors.As(err, &ce) {
					t.Fatalf("got event %v, error %v; want ErrCompacted", changes([]state.Event{ev}), err)
				}
				if ce.Compacted != cut || ce.Requested != tc.from {
					t.Fatalf("CompactedError %+v, want Compacted %d, Requested %d", ce, cut, tc.from)
				}
				return
			}
			t.Fatal("Watch ended without an event or an error")
		})
	}
	// The marker never runs ahead of the log.
	rev := mustRevision(t, w)
	if _, err := w.CompactChanges(ctx(), rev+1000); err != nil {
		t.Fatalf("CompactChanges past the end: %v", err)
	}
	mustPut(t, s, "c/after", "x")
	if got := collect(t, w, "c/", 1, state.FromRevision(rev+1)); string(got[0].Key) != "c/after" {
		t.Fatalf("after compacting everything, got %v", changes(got))
	}
}

func testWatchExpire(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	if err := s.PutWithTTL(ctx(), []byte("e/short"), []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "e/long", "x")
	deadline := time.Now().Add(watchDeadline)
	for {
		_, found := mustGet(t, s, "e/short")
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("e/short never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := s.CleanupExpired(ctx()); err != nil || n != 1 {
		t.Fatalf("CleanupExpired = %d, %v; want 1", n, err)
	}
	evs := collect(t, w, "e/", 3, state.FromRevision(from))
	want := []change{{state.EventPut, "e/short", 1}, {state.EventPut, "e/long", 1}, {state.EventExpire, "e/short", 1}}
	if got := changes(evs); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// testWatchConcurrentWriters: a watch running while writers write sees each
// write once, in per-key version order.
func testWatchConcurrentWriters(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	const writers, perWriter = 4, 50
	type result struct {
		evs []state.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, cancel := context.WithTimeout(ctx(), watchDeadline)
		defer cancel()
		var r result
		for ev, err := range w.Watch(c, []byte("w/"), state.FromRevision(from)) {
			if err != nil {
				r.err = err
				break
			}
			r.evs = append(r.evs, ev)
			if len(r.evs) == writers*perWriter {
				break
			}
		}
		done <- r
	}()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Two keys per writer, and one key all writers share.
				key := fmt.Sprintf("w/%d/%d", g, i%2)
				if i%5 == 0 {
					key = "w/shared"
				}
				if err := s.Put(ctx(), []byte(key), []byte("x")); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r := <-done
	if r.err != nil {
		t.Fatalf("Watch: %v after %d events", r.err, len(r.evs))
	}
	if len(r.evs) != writers*perWriter {
		t.Fatalf("got %d events, want %d", len(r.evs), writers*perWriter)
	}
	checkRevisions(t, r.evs)
	last := map[string]int64{}
	for _, ev := range r.evs {
		if ev.Version != last[string(ev.Key)]+1 {
			t.Fatalf("%s: version %d after %d", ev.Key, ev.Version, last[string(ev.Key)])
		}
		last[string(ev.Key)] = ev.Version
	}
}

func testWatchTransactions(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	if err := s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if err := tx.Put(ctx, []byte("t/a"), []byte("1")); err != nil {
			return err
		}
		if err := tx.Put(ctx, []byte("t/a"), []byte("2")); err != nil {
			return err
		}
		return tx.Put(ctx, []byte("t/b"), []byte("1"))
	}); err != nil {
		t.Fatalf("Transact: %v", err)
	}
	errRollback := errors.New("roll back")
	if err := s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if err := tx.Put(ctx, []byte("t/rolled-back"), []byte("1")); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("Transact = %v, want the function's error", err)
	}
	// A rolled-back write leaves a hole in the revisions (Postgres): the
	// watch must get past it to the next write.
	mustPut(t, s, "t/after", "1")
	evs := collect(t, w, "t/", 4, state.FromRevision(from))
	want := []change{{state.EventPut, "t/a", 1}, {state.EventPut, "t/a", 2}, {state.EventPut, "t/b", 1}, {state.EventPut, "t/after", 1}}
	if got := changes(evs); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func testWatchRestoreCheckpoint(t *testing.T, s state.Store) {
	w := watcher(t, s)
	mustPut(t, s, "cp/a", "1")
	id, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "cp/a", "2")
	mustPut(t, s, "cp/b", "1")
	from := mustRevision(t, w) + 1
	if err := s.RestoreCheckpoint(ctx(), id); err != nil {
		t.Fatal(err)
	}
	// Every current entry is removed, then the checkpoint's are written
	// back with the versions they had.
	evs := collect(t, w, "cp/", 3, state.FromRevision(from))
	if got, want := sortedChanges(evs[:2]), []change{{state.EventDelete, "cp/a", 2}, {state.EventDelete, "cp/b", 1}}; !slices.Equal(got, want) {
		t.Fatalf("removals: got %v, want %v", got, want)
	}
	if got, want := changes(evs[2:]), []change{{state.EventPut, "cp/a", 1}}; !slices.Equal(got, want) {
		t.Fatalf("restored: got %v, want %v", got, want)
	}
}

func testWatchInvalidOptions(t *testing.T, s state.Store) {
	w := watcher(t, s)
	tests := []struct {
		name string
		opt  state.WatchOption
	}{
		{"FromZero", state.FromRevision(0)},
		{"FromNegative", state.FromRevision(-1)},
		{"ZeroPollInterval", state.WithPollInterval(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range w.Watch(ctx(), nil, tc.opt) {
				if !errors.Is(err, state.ErrInvalidOption) {
					t.Fatalf("got %v, want ErrInvalidOption", err)
				}
				return
			}
			t.Fatal("Watch ended without an error")
		})
	}
	t.Run("CancelledContext", func(t *testing.T) {
		// The end of the context ends a watch, without an error.
		mustPut(t, s, "x", "1")
		c, cancel := context.WithCancel(ctx())
		cancel()
		for ev, err := range w.Watch(c, nil, state.FromRevision(1)) {
			t.Fatalf("cancelled watch delivered %v, %v", changes([]state.Event{ev}), err)
		}
	})
}

// testWatchFromAhead: a cursor beyond every revision the store has handed
// out belongs to another history (a restored backup, a failover that lost
// writes): the watch says so with ErrCompacted instead of waiting in
// silence for revisions that will mean other writes. The next revision is
// a cursor like any other.
func testWatchFromAhead(t *testing.T, s state.Store) {
	w := watcher(t, s)
	mustPut(t, s, "a/1", "x")
	rev := mustRevision(t, w)
	c, cancel := context.WithTimeout(ctx(), watchDeadline)
	defer cancel()
	for ev, err := range w.Watch(c, nil, state.FromRevision(rev+100)) {
		var ce *state.CompactedError
		if !errors.As(err, &ce) || !errors.Is(err, state.ErrCompacted) {
			t.Fatalf("Watch from %d with the store at %d: event %v, error %v; want ErrCompacted", rev+100, rev, changes([]state.Event{ev}), err)
		}
		if ce.Requested != rev+100 || ce.Compacted < rev {
			t.Fatalf("CompactedError %+v, want Requested %d and Compacted at least %d", ce, rev+100, rev)
		}
		break
	}
	mustPut(t, s, "a/2", "x")
	if got := collect(t, w, "a/", 1, state.FromRevision(rev+1)); string(got[0].Key) != "a/2" {
		t.Fatalf("from the next revision: %v, want a/2", changes(got))
	}
}

// testWatchEventExpiry: a put event carries the expiry the entry got, the
// same as GetEntry reports; a put without a TTL and a delete carry none.
func testWatchEventExpiry(t *testing.T, s state.Store) {
	w := watcher(t, s)
	from := mustRevision(t, w) + 1
	if err := s.PutWithTTL(ctx(), []byte("x/ttl"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	e, found, err := s.GetEntry(ctx(), []byte("x/ttl"))
	if err != nil || !found || e.ExpiresAt.IsZero() {
		t.Fatalf("GetEntry = %+v, %v, %v; want an entry that expires", e, found, err)
	}
	mustPut(t, s, "x/plain", "v")
	if err := s.Delete(ctx(), []byte("x/ttl")); err != nil {
		t.Fatal(err)
	}
	evs := collect(t, w, "x/", 3, state.FromRevision(from))
	if !evs[0].ExpiresAt.Equal(e.ExpiresAt) {
		t.Fatalf("put with a TTL: event ExpiresAt %v, entry's %v", evs[0].ExpiresAt, e.ExpiresAt)
	}
	if !evs[1].ExpiresAt.IsZero() || !evs[2].ExpiresAt.IsZero() {
		t.Fatalf("put without a TTL, delete: ExpiresAt %v, %v; want zero", evs[1].ExpiresAt, evs[2].ExpiresAt)
	}
}
