package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// The change feed's promises (issue 19), each against a real server.

// holdRevision begins a transaction that writes key through the trigger,
// so that it holds a revision until the returned transaction ends.
func holdRevision(t *testing.T, s *state.Postgres, key string) pgx.Tx {
	t.Helper()
	tx, err := s.Pool().Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(bg) })
	if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ($1, 'held')`, []byte(key)); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestRevisionIsASafeResumePoint: a transaction holds an uncommitted put
// that has taken a revision, and a plain Put commits a later one. Revision
// must not hand out the later revision while the earlier one is in
// flight (a watch from it would never deliver the transaction's put): it
// returns once the transaction has ended, and then a read sees the
// transaction's put and a watch from Revision()+1 delivers the next write.
func TestRevisionIsASafeResumePoint(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	tx := holdRevision(t, s, "r/in-flight")
	if err := s.Put(bg, []byte("r/later"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rev int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		rev, err := s.Revision(bg)
		got <- result{rev, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("Revision returned %d, %v while an earlier revision is in flight", r.rev, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("Revision did not return after the transaction ended")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if _, found, err := s.Get(bg, []byte("r/in-flight")); err != nil || !found {
		t.Fatalf("Get after Revision: found %v, %v; want the transaction's put", found, err)
	}
	if err := s.Put(bg, []byte("r/next"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	items := watchEvents(t, s, "r/", state.FromRevision(r.rev+1))
	if ev := next(t, items, 30*time.Second); string(ev.Key) != "r/next" {
		t.Fatalf("watch from Revision()+1 = %d delivered %q at %d first, want r/next", r.rev+1, ev.Key, ev.Revision)
	}
}

// TestCompactedIsASafeResumePoint: compaction never moves the marker past
// a revision that is still in flight, so CompactedError.Compacted+1 is a
// point a watch can resume from without missing the in-flight write.
func TestCompactedIsASafeResumePoint(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	tx := holdRevision(t, s, "c/in-flight")
	for i := range 3 {
		if err := s.Put(bg, fmt.Appendf(nil, "c/%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	compacted := make(chan error, 1)
	go func() {
		_, err := s.CompactChanges(bg, 1<<62)
		compacted <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	if err := <-compacted; err != nil {
		t.Fatal(err)
	}
	if err := s.Put(bg, []byte("c/after"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	var ce *state.CompactedError
	if err := nextErr(t, watchEvents(t, s, "c/", state.FromRevision(from+1)), 30*time.Second); !errors.As(err, &ce) {
		t.Fatalf("watch from before the compaction: %v, want ErrCompacted", err)
	}
	items := watchEvents(t, s, "c/", state.FromRevision(ce.Compacted+1))
	if ev := next(t, items, 30*time.Second); string(ev.Key) != "c/after" {
		t.Fatalf("watch from Compacted+1 = %d delivered %q first, want c/after", ce.Compacted+1, ev.Key)
	}
}

// TestWatchAfterHugeRollback: a rolled-back write of a million entries
// leaves a million lost revisions; the next write is delivered within 5 s,
// and a watch started from before the hole gets there as fast.
func TestWatchAfterHugeRollback(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	running := watchEvents(t, s, "h/", state.FromRevision(from+1))
	tx, err := s.Pool().Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value)
		SELECT convert_to('big/' || g, 'UTF8'), '\x00'::bytea FROM generate_series(1, 1000000) AS g`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(bg); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(bg, []byte("h/next"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ev := next(t, running, 5*time.Second); string(ev.Key) != "h/next" {
		t.Fatalf("running watch: %q, want h/next", ev.Key)
	}
	t.Logf("the running watch delivered the write after a rolled-back million in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	fresh := watchEvents(t, s, "h/", state.FromRevision(from+1))
	if ev := next(t, fresh, 5*time.Second); string(ev.Key) != "h/next" {
		t.Fatalf("watch from before the hole: %q, want h/next", ev.Key)
	}
	t.Logf("a watch from before the hole delivered it in %v", time.Since(start).Round(time.Millisecond))
}

// TestOldHolesCostNothing: 100 rolled-back transactions leave 100 holes;
// a watch started from before them delivers the next write at once, not
// after a wait per hole.
func TestOldHolesCostNothing(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		tx, err := s.Pool().Begin(bg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ($1, 'x')`, fmt.Appendf(nil, "o/rolled-back/%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(bg); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := s.Put(bg, fmt.Appendf(nil, "o/kept/%d", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Put(bg, []byte("o/last"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	items := watchEvents(t, s, "o/", state.FromRevision(from+1))
	for {
		ev := next(t, items, 2*time.Second)
		if string(ev.Key) == "o/last" {
			break
		}
	}
	t.Logf("11 changes across 100 old holes delivered in %v", time.Since(start).Round(time.Millisecond))
}

// TestStalledWriterDoesNotStarveTheApplication: ten watches wait behind a
// session that holds an uncommitted write (idle in transaction). They hold
// none of the store's connections, so the application's Gets run as
// before; the watches deliver once the session ends.
func TestStalledWriterDoesNotStarveTheApplication(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, func(c *state.Config) { c.MaxConns = 2 })
	if err := s.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	stalled, err := pgx.Connect(bg, s.Config().DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close(bg)
	tx, err := stalled.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ('s/held', 'x')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(bg, []byte("s/after"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	var watches []<-chan watchItem
	for range 10 {
		watches = append(watches, watchEvents(t, s, "s/", state.FromRevision(from+1)))
	}
	time.Sleep(300 * time.Millisecond) // the watches are all waiting on the held revision
	if n := s.Pool().Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d of the store's connections are in use while only watches run", n)
	}
	for i := range 200 {
		c, cancel := context.WithTimeout(bg, 5*time.Second)
		_, found, err := s.Get(c, []byte("k"))
		cancel()
		if err != nil || !found {
			t.Fatalf("Get %d while the watches wait: %v, %v", i, found, err)
		}
	}
	for i, w := range watches {
		select {
		case it := <-w:
			t.Fatalf("watch %d delivered %q (%v) while the earlier revision is held", i, it.ev.Key, it.err)
		default:
		}
	}
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	for i, w := range watches {
		if a, b := next(t, w, 30*time.Second), next(t, w, 30*time.Second); string(a.Key) != "s/held" || string(b.Key) != "s/after" {
			t.Fatalf("watch %d: %q then %q, want s/held then s/after", i, a.Key, b.Key)
		}
	}
}

// TestWatchersShareOneReader: 200 idle watches in one process cost the
// server what one does: one reader polls the log for all of them, through
// the feed's own connections.
func TestWatchersShareOneReader(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	admin := testdb.Conn(t, s.Config().DSN)
	for i := range 200 {
		watchEvents(t, s, fmt.Sprintf("w/%d/", i))
	}
	time.Sleep(200 * time.Millisecond) // every watch has started
	count := func() int64 {
		return queryInt(t, admin, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`)
	}
	before, queries := count(), s.Stats().Queries
	time.Sleep(time.Second)
	// pg_stat_database is updated when a backend reports its counters,
	// at most every 500 ms (PGSTAT_MIN_INTERVAL) for a busy one.
	time.Sleep(1100 * time.Millisecond)
	xacts, reads := count()-before, s.Stats().Queries-queries
	t.Logf("200 idle watches for about a second: %d statements of the store, %d server transactions", reads, xacts)
	// One reader polling every 10 ms makes about 100 reads a second (up
	// to 210 in the 2.1 s measured); 200 watches polling on their own would
	// make 20,000.
	if reads > 400 {
		t.Fatalf("200 idle watches made %d reads in about two seconds, want one reader's (at most 400)", reads)
	}
	backends := queryInt(t, admin, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgstate' AND state = 'idle'`)
	if backends > int64(s.Config().MaxConns)+2 {
		t.Fatalf("%d of the store's backends with 200 watches, want at most the pool (%d) and the feed's two", backends, s.Config().MaxConns)
	}
}

// TestLargeValueWithWatchersRunning: with watchers reading and another
// writer writing, a value of MaxValueSize is written (a slow TOAST write
// of the revision's holder is never aborted by a reader) and delivered.
func TestLargeValueWithWatchersRunning(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, func(c *state.Config) { c.MaxValueSize = 32 << 20 })
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	values := watchEvents(t, s, "big", state.WithValues(), state.FromRevision(from+1))
	watchEvents(t, s, "")
	ctx, stop := context.WithCancel(bg)
	var wg sync.WaitGroup
	var others atomic.Int64
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := s.Put(ctx, fmt.Appendf(nil, "small/%d", i), []byte("x")); err == nil {
				others.Add(1)
			}
		}
	})
	big := bytes.Repeat([]byte("0123456789abcdef"), (32<<20)/16)
	retries := s.Stats().Retries
	err = s.Put(bg, []byte("big"), big)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("Put of %d bytes with watchers running and %d other writes: %v", len(big), others.Load(), err)
	}
	ev := next(t, values, 10*time.Second)
	if string(ev.Key) != "big" || !bytes.Equal(ev.Value, big) {
		t.Fatalf("delivered %q with %d bytes, want big with %d", ev.Key, len(ev.Value), len(big))
	}
	t.Logf("%d-byte value written with %d retries, beside %d other writes", len(big), s.Stats().Retries-retries, others.Load())
}

// TestWatchValuesOverAGigabyte: a page of a WithValues watch is bounded in
// bytes, so 17 values of 64 MiB (more than PostgreSQL's 1 GB limit on one
// value, which a page aggregated into one row hit) are all delivered.
func TestWatchValuesOverAGigabyte(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 1.1 GB; skipped under -short")
	}
	t.Parallel()
	s := testdb.Open(t, func(c *state.Config) { c.QueryTimeout = 2 * time.Minute })
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 17, 64 << 20
	value := bytes.Repeat([]byte{'v'}, size-1)
	for i := range n {
		if err := s.Put(bg, fmt.Appendf(nil, "g/%02d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	c, cancel := context.WithTimeout(bg, 5*time.Minute)
	defer cancel()
	got := 0
	for ev, err := range s.Watch(c, []byte("g/"), state.WithValues(), state.FromRevision(from+1)) {
		if err != nil {
			t.Fatalf("after %d values: %v", got, err)
		}
		if want := fmt.Sprintf("g/%02d", got); string(ev.Key) != want || len(ev.Value) != size-1 {
			t.Fatalf("event %d: %q with %d bytes, want %s with %d", got, ev.Key, len(ev.Value), want, size-1)
		}
		if got++; got == n {
			break
		}
	}
	if got != n {
		t.Fatalf("delivered %d of %d values", got, n)
	}
}

// TestWatchSlowConsumerCatchesUp: a consumer that stops reading while
// thousands of changes are written falls out of the shared reader, reads
// the log itself, and still gets every change exactly once, in order.
func TestWatchSlowConsumerCatchesUp(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	fast := watchEvents(t, s, "q/", state.FromRevision(from+1)) // keeps the shared reader running
	c, cancel := context.WithTimeout(bg, 2*time.Minute)
	defer cancel()
	const n = 10000
	entries := make([]state.Entry, n)
	for i := range entries {
		entries[i] = state.Entry{Key: fmt.Appendf(nil, "q/%05d", i), Value: []byte("x")}
	}
	if err := s.BatchPut(bg, entries[:1]); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev, err := range s.Watch(c, []byte("q/"), state.FromRevision(from+1)) {
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if len(got) == 0 {
			// Stop reading while the rest goes through the shared
			// reader (more than a watch's queue holds).
			for i := 1; i < n; i += 1000 {
				if err := s.BatchPut(bg, entries[i:min(n, i+1000)]); err != nil {
					t.Fatal(err)
				}
			}
			for i := range n {
				if ev := next(t, fast, 30*time.Second); string(ev.Key) != fmt.Sprintf("q/%05d", i) {
					t.Fatalf("the other watch's event %d is %q", i, ev.Key)
				}
			}
		}
		got = append(got, string(ev.Key))
		if len(got) == n {
			break
		}
	}
	for i, k := range got {
		if want := fmt.Sprintf("q/%05d", i); k != want {
			t.Fatalf("event %d is %s, want %s", i, k, want)
		}
	}
}
