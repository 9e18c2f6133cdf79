package tests

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// feedCheck collects what a watch delivers while writers write, and checks
// it against the log and the entries once the writers are done.
type feedCheck struct {
	mu       sync.Mutex
	events   []state.Event
	acked    map[string]bool // values of acknowledged writes
	ackCount atomic.Int64
}

func newFeedCheck() *feedCheck { return &feedCheck{acked: map[string]bool{}} }

// write runs writers goroutines, each putting perWriter distinct values
// over keysPerWriter keys of its own and one key all share, retrying a
// failed put (with the same value) until it is acknowledged.
func (f *feedCheck) write(ctx context.Context, t *testing.T, s state.Store, prefix string, writers, perWriter int) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("%s%d/%d", prefix, w, i%10)
				if i%7 == 0 {
					key = prefix + "shared"
				}
				value := fmt.Sprintf("%d/%d", w, i)
				for {
					err := s.Put(ctx, []byte(key), []byte(value))
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
				f.mu.Lock()
				f.acked[value] = true
				f.mu.Unlock()
				f.ackCount.Add(1)
			}
		})
	}
	wg.Wait()
}

// watch collects the events of a watch over prefix from revision from
// until ctx ends; done receives the error that ended it (nil for ctx).
func (f *feedCheck) watch(ctx context.Context, w state.Watcher, prefix string, from int64) (done <-chan error) {
	out := make(chan error, 1)
	go func() {
		for ev, err := range w.Watch(ctx, []byte(prefix), state.FromRevision(from), state.WithValues()) {
			if err != nil {
				out <- err
				return
			}
			f.mu.Lock()
			f.events = append(f.events, ev)
			f.mu.Unlock()
		}
		out <- nil
	}()
	return out
}

// check verifies the delivered events: each change of the log exactly once
// (no revision twice, the same revisions as the log holds), every
// acknowledged value delivered, and per key the versions 1, 2, 3, …
// without a hole up to the entry's final version (so nothing lost, nothing
// repeated, order kept).
func (f *feedCheck) check(t *testing.T, logRevisions []int64, finalVersions map[string]int64) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := make(map[int64]bool, len(f.events))
	versions := map[string]int64{}
	values := map[string]int{}
	for i, ev := range f.events {
		if seen[ev.Revision] {
			t.Fatalf("revision %d delivered twice", ev.Revision)
		}
		seen[ev.Revision] = true
		if i > 0 && ev.Revision <= f.events[i-1].Revision {
			t.Fatalf("revision %d after %d", ev.Revision, f.events[i-1].Revision)
		}
		if ev.Kind != state.EventPut {
			t.Fatalf("unexpected %v event for %s", ev.Kind, ev.Key)
		}
		k := string(ev.Key)
		if ev.Version != versions[k]+1 {
			t.Fatalf("%s: version %d delivered after %d", k, ev.Version, versions[k])
		}
		versions[k] = ev.Version
		values[string(ev.Value)]++
	}
	if len(logRevisions) != len(f.events) {
		t.Fatalf("the log holds %d changes, the watch delivered %d", len(logRevisions), len(f.events))
	}
	for _, r := range logRevisions {
		if !seen[r] {
			t.Fatalf("revision %d is in the log but was not delivered", r)
		}
	}
	for k, v := range finalVersions {
		if versions[k] != v {
			t.Fatalf("%s: last delivered version %d, entry is at %d", k, versions[k], v)
		}
	}
	for v := range f.acked {
		if values[v] == 0 {
			t.Fatalf("acknowledged write %s was not delivered", v)
		}
	}
}

func (f *feedCheck) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// feedTruth reads the log's revisions and the entries' versions under
// prefix, straight from the database.
func feedTruth(t *testing.T, env *faultEnv, db, prefix string) ([]int64, map[string]int64) {
	t.Helper()
	conn := env.conn(t, db)
	rows, err := conn.Query(bg, `SELECT revision FROM state_changes
		WHERE kind = 1 AND key >= $1::bytea AND key < $2::bytea ORDER BY revision`, []byte(prefix), state.PrefixEnd([]byte(prefix)))
	if err != nil {
		t.Fatal(err)
	}
	revs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	rows, err = conn.Query(bg, `SELECT key, version FROM state_entries WHERE key >= $1::bytea AND key < $2::bytea`, []byte(prefix), state.PrefixEnd([]byte(prefix)))
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]int64{}
	var k []byte
	var v int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		versions[string(k)] = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return revs, versions
}

// TestWatchConnectionsKilled: a watch over a prefix sees every one of
// 10,000 writes by 8 concurrent writers exactly once, in per-key version
// order, while every connection of the database (the watch's and the
// writers') is terminated every 500 ms. Writes to another prefix run
// alongside and must not show up.
func TestWatchConnectionsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	writer := env.open(t, db, func(c *state.Config) { c.MaxConns = 8 })
	watcher := env.open(t, db, func(c *state.Config) { c.MaxConns = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	from, err := watcher.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := newFeedCheck()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	done := f.watch(watchCtx, watcher, "feed/", from+1)
	stopKiller := env.killer(t, db, 500*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { newFeedCheck().write(ctx, t, writer, "noise/", 2, 500) })
	f.write(ctx, t, writer, "feed/", 8, 1250)
	wg.Wait()
	wrote := time.Since(start)
	revs, versions := feedTruth(t, env, db, "feed/")
	// The killer keeps killing until the watch has caught up.
	deadline := time.Now().Add(time.Minute)
	for f.count() < len(revs) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	kills, rounds := stopKiller()
	stopWatch()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
	if f.ackCount.Load() != 10000 {
		t.Fatalf("%d writes acknowledged, want 10000", f.ackCount.Load())
	}
	f.check(t, revs, versions)
	if rounds < 2 || kills == 0 {
		t.Fatalf("the killer ran %d rounds and killed %d backends: the test proved nothing", rounds, kills)
	}
	t.Logf("10000 writes in %v, %d changes in the log (retried writes may commit twice), all delivered once; %d backends killed in %d rounds",
		wrote.Round(time.Millisecond), len(revs), kills, rounds)
}

// TestWatchServerRestart: a watch keeps its place across a server restart
// in the middle of a write load: every change is delivered once, in per-key
// version order; the revisions of the writes the restart rolled back are
// filled as gaps.
func TestWatchServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	writer := env.open(t, db, nil)
	watcher := env.open(t, db, func(c *state.Config) { c.MaxConns = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	from, err := watcher.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := newFeedCheck()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	done := f.watch(watchCtx, watcher, "feed/", from+1)
	var wg sync.WaitGroup
	wg.Go(func() { f.write(ctx, t, writer, "feed/", 4, 1000) })
	waitFor(t, time.Minute, "some events before the restart", func() bool { return f.count() > 200 })
	restartStart := time.Now()
	if err := env.cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	restartTook := time.Since(restartStart)
	before := f.count()
	wg.Wait()
	revs, versions := feedTruth(t, env, db, "feed/")
	waitFor(t, time.Minute, "the watch to catch up", func() bool { return f.count() >= len(revs) })
	stopWatch()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
	if f.ackCount.Load() != 4000 {
		t.Fatalf("%d writes acknowledged, want 4000", f.ackCount.Load())
	}
	if before >= len(revs) {
		t.Fatalf("the watch had seen all %d changes before the restart: the test proved nothing", len(revs))
	}
	f.check(t, revs, versions)
	t.Logf("restart took %v with %d of %d changes delivered; all delivered once afterwards", restartTook.Round(time.Millisecond), before, len(revs))
}
